package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ForwardedHeader names the header that the trusted proxies write the
// client's address in.
type ForwardedHeader string

// The headers a proxy may write the client in. Only one is read: a proxy
// that appends to one passes the other through as the client wrote it.
const (
	XForwardedFor ForwardedHeader = "X-Forwarded-For" // AWS ALB, nginx, Envoy, GCP (the default)
	Forwarded     ForwardedHeader = "Forwarded"       // RFC 7239 for= parameters
)

// clientIPs finds the address of the client that sent a request, for the
// login limit. The peer is the client unless it is one of the trusted
// proxies; only then are the hops the proxies added read from header, and
// the client is the right-most hop that is not itself a trusted proxy.
// Hops left of that one were written by the client and prove nothing. An
// IPv6 client is its /64: one subscriber usually holds a whole /64, and
// per-address budgets would give it 2^64 of them.
type clientIPs struct {
	trusted []netip.Prefix
	header  ForwardedHeader // "" is XForwardedFor
}

// of returns the client's address as a string (the limiter's key).
func (c clientIPs) of(r *http.Request) string {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok {
		return hostOf(r.RemoteAddr)
	}
	if !c.isTrusted(peer) {
		return clientKey(peer)
	}
	var hops []string
	if c.header == Forwarded {
		hops = forwardedFor(r.Header.Values("Forwarded"))
	} else {
		hops = xForwardedFor(r.Header.Values("X-Forwarded-For"))
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		addr, ok := parseHop(hops[i])
		if !ok {
			// "unknown", an obfuscated name or garbage, written by a
			// trusted proxy: all such clients share one budget.
			return strings.ToLower(hops[i])
		}
		client = addr
		if !c.isTrusted(addr) {
			break
		}
	}
	return clientKey(client)
}

// clientKey is a's limiter key: the address, or for IPv6 its /64.
func clientKey(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

func (c clientIPs) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop parses "192.0.2.1", "192.0.2.1:4711", "2001:db8::1" or
// "[2001:db8::1]:4711"; IPv4-mapped IPv6 addresses become IPv4.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// forwardedFor returns the for= parameters of Forwarded header lines, in
// order (left-most first), quotes removed.
func forwardedFor(lines []string) []string {
	var hops []string
	for _, line := range lines {
		for _, elem := range strings.Split(line, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					hops = append(hops, strings.Trim(v, `"`))
				}
			}
		}
	}
	return hops
}

// xForwardedFor returns the hops of X-Forwarded-For header lines in order.
func xForwardedFor(lines []string) []string {
	var hops []string
	for _, line := range lines {
		for _, h := range strings.Split(line, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	return hops
}

func hostOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}
