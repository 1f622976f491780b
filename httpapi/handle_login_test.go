package httpapi

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/orderflow/orderflow/auth"
	"github.com/orderflow/orderflow/httpapi/openapitest"
)

// usersFile returns users "alice" with password "s3cret".
func usersFile(t testing.TB) *auth.Users {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	u, err := auth.LoadUsers(strings.NewReader("alice:" + string(hash) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestLogin(t *testing.T) {
	passwords := func(c *Config, _ *Deps) { c.DevLogin = false; c.Users = usersFile(t) }
	tests := []struct {
		name     string
		mode     func(*Config, *Deps)
		body     string
		ctype    string
		header   []string // extra headers
		want     int
		wantType string
		// offContract marks a request that breaks openapi.json on purpose.
		offContract bool
	}{
		{name: "dev mode takes the spec's body with its extra amount field", body: `{"user_id":"u123","amount":1}`, want: 200},
		{name: "dev mode ignores a password", body: `{"user_id":"u123","password":"whatever"}`, want: 200},
		{name: "dev mode accepts a charset parameter", body: `{"user_id":"u123"}`, ctype: "application/json; charset=utf-8", want: 200},
		{name: "dev mode rejects an invalid user_id", offContract: true, body: `{"user_id":"-bad id-"}`, want: 422, wantType: "validation-failed"},
		{name: "user_id is required", offContract: true, body: `{"amount":1}`, want: 422, wantType: "validation-failed"},
		{name: "user_id of the wrong type is 422", offContract: true, body: `{"user_id":123}`, want: 422, wantType: "validation-failed"},
		{name: "malformed JSON is 400", offContract: true, body: `{"user_id":`, want: 400, wantType: "malformed-json"},
		{name: "an unclosed array is 400, not 422", offContract: true, body: `[`, want: 400, wantType: "malformed-json"},
		{name: "a number with trailing letters is 400, not 422", offContract: true, body: `123abc`, want: 400, wantType: "malformed-json"},
		{name: "an empty body is 400", offContract: true, body: ``, want: 400, wantType: "bad-request"},
		{name: "another content type is 415", offContract: true, body: `user_id=u123`, ctype: "application/x-www-form-urlencoded", want: 415, wantType: "unsupported-media-type"},
		{name: "a compressed body is 415", offContract: true, body: `{"user_id":"u123"}`, header: []string{"Content-Encoding", "deflate"}, want: 415, wantType: "unsupported-media-type"},
		{name: "a body over the limit is 413", offContract: true, body: `{"user_id":"` + strings.Repeat("u", 70<<10) + `"}`, want: 413, wantType: "payload-too-large"},
		{name: "the right password logs in", mode: passwords, body: `{"user_id":"alice","password":"s3cret"}`, want: 200},
		{name: "a wrong password is 401", mode: passwords, body: `{"user_id":"alice","password":"guess"}`, want: 401, wantType: "invalid-credentials"},
		{name: "an unknown user is 401", mode: passwords, body: `{"user_id":"mallory","password":"s3cret"}`, want: 401, wantType: "invalid-credentials"},
		{name: "a missing password is 401", mode: passwords, body: `{"user_id":"alice"}`, want: 401, wantType: "invalid-credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *fixture
			if tt.mode != nil {
				f = newFixture(t, tt.mode)
			} else {
				f = newFixture(t)
			}
			ctype := "application/json"
			if tt.ctype != "" {
				ctype = tt.ctype
			}
			req := request(http.MethodPost, "/login", tt.body, append([]string{"Content-Type", ctype}, tt.header...)...)
			if tt.offContract {
				req = openapitest.Invalid(req)
			}
			rr := f.do(req)
			if rr.Code != tt.want {
				t.Fatalf("status %d, want %d; body %s", rr.Code, tt.want, rr.Body)
			}
			if tt.want != 200 {
				if p := problemOf(t, rr); p.Type != problemTypeBase+tt.wantType {
					t.Errorf("type %q, want %q", p.Type, tt.wantType)
				}
				return
			}
			var resp struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
				ExpiresIn   int64  `json:"expires_in"`
			}
			decode(t, rr, &resp)
			if resp.TokenType != "bearer" || resp.ExpiresIn != int64(time.Hour/time.Second) {
				t.Errorf("token_type %q expires_in %d, want bearer 3600", resp.TokenType, resp.ExpiresIn)
			}
			if rr.Header().Get("Cache-Control") != "no-store" {
				t.Error("a token answer is cacheable")
			}
			// The token works for POST /orders.
			order := f.do(request(http.MethodPost, "/orders", `{"amount":1}`, "Content-Type", "application/json", "Authorization", "Bearer "+resp.AccessToken))
			if order.Code != 202 {
				t.Errorf("POST /orders with the new token: %d %s", order.Code, order.Body)
			}
		})
	}
}

func TestLoginRateLimitPerIP(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *Deps) { c.LoginRateLimit = 2 })
	login := func(ip string) int {
		req := request(http.MethodPost, "/login", `{"user_id":"u123"}`, "Content-Type", "application/json")
		req.RemoteAddr = ip + ":4242"
		rr := f.do(req)
		if rr.Code == 429 {
			if got := rr.Header().Get("Retry-After"); got != "30" {
				t.Errorf("Retry-After = %q, want 30", got)
			}
			if p := problemOf(t, rr); p.Type != problemTypeBase+"rate-limited" {
				t.Errorf("type %q", p.Type)
			}
		}
		return rr.Code
	}
	got := []int{login("10.0.0.1"), login("10.0.0.1"), login("10.0.0.1"), login("10.0.0.2")}
	want := []int{200, 200, 429, 200}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("attempt %d: status %d, want %d", i+1, got[i], want[i])
		}
	}
	if ip := (clientIPs{}).of(&http.Request{RemoteAddr: "no-port"}); ip != "no-port" {
		t.Errorf("client IP without a port = %q", ip)
	}
}

func TestLoginRateLimitBehindATrustedProxy(t *testing.T) {
	lb := netip.MustParsePrefix("10.0.0.0/24")
	f := newFixture(t, func(c *Config, _ *Deps) { c.LoginRateLimit = 1; c.TrustedProxies = []netip.Prefix{lb} })
	login := func(peer string, header ...string) int {
		req := request(http.MethodPost, "/login", `{"user_id":"u123"}`, append([]string{"Content-Type", "application/json"}, header...)...)
		req.RemoteAddr = peer + ":4242"
		return f.do(req).Code
	}
	// Two users behind the same load balancer have a budget each.
	if got := login("10.0.0.7", "X-Forwarded-For", "198.51.100.1"); got != 200 {
		t.Fatalf("first user behind the proxy: %d, want 200", got)
	}
	if got := login("10.0.0.8", "X-Forwarded-For", "198.51.100.2"); got != 200 {
		t.Errorf("second user behind the proxy shares the first one's budget: %d, want 200", got)
	}
	if got := login("10.0.0.9", "X-Forwarded-For", "198.51.100.1"); got != 429 {
		t.Errorf("the first user again, through another proxy: %d, want 429", got)
	}
	// Forwarded, which the proxy passes through as the client wrote it, is
	// not read when the proxies write X-Forwarded-For.
	if got := login("10.0.0.7", "Forwarded", "for=203.0.113.77", "X-Forwarded-For", "198.51.100.1"); got != 429 {
		t.Errorf("a client's own Forwarded header bought a new budget: %d, want 429", got)
	}
	// A client cannot buy a new budget by writing the header itself.
	if got := login("198.51.100.1", "X-Forwarded-For", "203.0.113.99"); got != 429 {
		t.Errorf("an untrusted peer's own X-Forwarded-For was believed: %d, want 429", got)
	}
}

func TestClientIPs(t *testing.T) {
	trusted := clientIPs{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48")}}
	rfc7239 := trusted
	rfc7239.header = Forwarded
	tests := []struct {
		name   string
		c      clientIPs
		peer   string
		header []string
		want   string
	}{
		{"no trusted proxies: the peer, whatever the headers say", clientIPs{}, "10.0.0.1:1", []string{"X-Forwarded-For", "198.51.100.1"}, "10.0.0.1"},
		{"an untrusted peer's headers are ignored", trusted, "198.51.100.1:1", []string{"X-Forwarded-For", "203.0.113.5"}, "198.51.100.1"},
		{"a trusted peer without headers is the client", trusted, "10.1.2.3:1", nil, "10.1.2.3"},
		{"the right-most untrusted hop of X-Forwarded-For", trusted, "10.0.0.1:1", []string{"X-Forwarded-For", "203.0.113.9, 198.51.100.1, 10.0.0.2"}, "198.51.100.1"},
		{"hops over several X-Forwarded-For lines", trusted, "10.0.0.1:1", []string{"X-Forwarded-For", "203.0.113.9", "X-Forwarded-For", "198.51.100.1"}, "198.51.100.1"},
		{"Forwarded for= with a quoted IPv6 and port: its /64", rfc7239, "10.0.0.1:1", []string{"Forwarded", `for=203.0.113.9, for="[2001:db8:cafe::17]:4711";proto=https`}, "2001:db8:cafe::/64"},
		{"X-Forwarded-For is not read when the proxies write Forwarded", rfc7239, "10.0.0.1:1", []string{"Forwarded", "For=198.51.100.7", "X-Forwarded-For", "198.51.100.8"}, "198.51.100.7"},
		{"Forwarded is not read when the proxies write X-Forwarded-For", trusted, "10.0.0.1:1", []string{"Forwarded", "for=198.51.100.7", "X-Forwarded-For", "198.51.100.8"}, "198.51.100.8"},
		{"an IPv6 peer is its /64", clientIPs{}, "[2001:db8:cafe:1:a::1]:1", nil, "2001:db8:cafe:1::/64"},
		{"all hops trusted: the left-most", trusted, "10.0.0.1:1", []string{"X-Forwarded-For", "10.9.9.9, 10.0.0.2"}, "10.9.9.9"},
		{"a trusted IPv6 proxy", trusted, "[2001:db8:1::5]:1", []string{"X-Forwarded-For", "198.51.100.3"}, "198.51.100.3"},
		{"an IPv4-mapped peer is matched as IPv4", trusted, "[::ffff:10.0.0.1]:1", []string{"X-Forwarded-For", "198.51.100.4"}, "198.51.100.4"},
		{"an unknown hop from a trusted proxy shares one budget", rfc7239, "10.0.0.1:1", []string{"Forwarded", "for=unknown"}, "unknown"},
		{"garbage left of the first untrusted hop is never reached", trusted, "10.0.0.1:1", []string{"X-Forwarded-For", "not-an-ip, 198.51.100.5"}, "198.51.100.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.peer, Header: http.Header{}}
			for i := 0; i+1 < len(tt.header); i += 2 {
				r.Header.Add(tt.header[i], tt.header[i+1])
			}
			if got := tt.c.of(r); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
