package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIPs finds the address of the client that sent a request, for the
// login limit. The peer is the client unless it is one of the trusted
// proxies; only then are the hops the proxies added read, from Forwarded
// (RFC 7239) or, without it, X-Forwarded-For, and the client is the
// right-most hop that is not itself a trusted proxy. Hops left of that one
// were written by the client and prove nothing.
type clientIPs struct {
	trusted []netip.Prefix
}

// of returns the client's address as a string (the limiter's key).
func (c clientIPs) of(r *http.Request) string {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok || !c.isTrusted(peer) {
		return hostOf(r.RemoteAddr)
	}
	hops := forwardedFor(r.Header.Values("Forwarded"))
	if len(hops) == 0 {
		hops = xForwardedFor(r.Header.Values("X-Forwarded-For"))
	}
	client := peer.String()
	for i := len(hops) - 1; i >= 0; i-- {
		addr, ok := parseHop(hops[i])
		if !ok {
			// "unknown", an obfuscated name or garbage, written by a
			// trusted proxy: all such clients share one budget.
			return strings.ToLower(hops[i])
		}
		client = addr.String()
		if !c.isTrusted(addr) {
			break
		}
	}
	return client
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
