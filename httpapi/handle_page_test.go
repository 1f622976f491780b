package httpapi

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestOrderPageIsServed(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, path, wantType, wantBody string
	}{
		{"the page is served at /", "/", "text/html; charset=utf-8", `<script type="module" src="app/app.js"></script>`},
		{"its main module is JavaScript", "/app/app.js", "text/javascript; charset=utf-8", "import "},
		{"its stylesheet is CSS", "/app/app.css", "text/css; charset=utf-8", ":root"},
		{"its icon is SVG", "/app/icon.svg", "image/svg+xml", "<svg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := f.do(request(http.MethodGet, tt.path, ""))
			if rr.Code != 200 {
				t.Fatalf("status %d", rr.Code)
			}
			h := rr.Header()
			if got := h.Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if !strings.Contains(rr.Body.String(), tt.wantBody) {
				t.Errorf("body lacks %q", tt.wantBody)
			}
			if got := h.Get("Content-Security-Policy"); got != cspWeb {
				t.Errorf("CSP = %q, want the page's %q", got, cspWeb)
			}
			if got := h.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", got)
			}
			if h.Get("ETag") == "" || h.Get("X-Request-Id") == "" {
				t.Errorf("ETag %q, X-Request-ID %q: want both", h.Get("ETag"), h.Get("X-Request-Id"))
			}
		})
	}
	t.Run("an unchanged file answers 304 to its ETag", func(t *testing.T) {
		for _, p := range []string{"/", "/app/app.js"} {
			etag := f.do(request(http.MethodGet, p, "")).Header().Get("ETag")
			rr := f.do(request(http.MethodGet, p, "", "If-None-Match", etag))
			if rr.Code != 304 || rr.Body.Len() != 0 {
				t.Errorf("%s: status %d with %d bytes, want 304 and no body", p, rr.Code, rr.Body.Len())
			}
		}
	})
	t.Run("HEAD and ranges work", func(t *testing.T) {
		if rr := f.do(request(http.MethodHead, "/", "")); rr.Code != 200 || rr.Body.Len() != 0 {
			t.Errorf("HEAD /: %d, %d bytes", rr.Code, rr.Body.Len())
		}
		if rr := f.do(request(http.MethodGet, "/app/app.css", "", "Range", "bytes=0-9")); rr.Code != 206 || rr.Body.Len() != 10 {
			t.Errorf("Range: %d, %d bytes", rr.Code, rr.Body.Len())
		}
		if rr := f.do(request(http.MethodGet, "/app/app.css", "", "Range", "bytes=99999999-")); rr.Code != 416 {
			t.Errorf("unsatisfiable Range: %d, want 416", rr.Code)
		}
	})
	t.Run("an unknown file is a 404 problem under the API's CSP", func(t *testing.T) {
		for _, p := range []string{"/app/nope.js", "/app/..%2findex.html", "/index.html", "/app/sub/app.js"} {
			rr := f.do(request(http.MethodGet, p, ""))
			if rr.Code != 404 {
				t.Errorf("%s: status %d, want 404", p, rr.Code)
				continue
			}
			problemOf(t, rr)
			if got := rr.Header().Get("Content-Security-Policy"); got != cspAPI {
				t.Errorf("%s: CSP = %q, want %q", p, got, cspAPI)
			}
		}
	})
	t.Run("the root route is labelled / in the metrics", func(t *testing.T) {
		f := newFixture(t)
		f.do(request(http.MethodGet, "/", ""))
		if got := counterValue(t, f.reg, "http_requests_total", map[string]string{"route": "/", "code": "200"}); got != 1 {
			t.Errorf("http_requests_total{route=\"/\"} = %v, want 1", got)
		}
	})
}

func TestOrderPageCSPIsStrict(t *testing.T) {
	for _, directive := range []string{
		"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
		"img-src 'self' data:", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
	} {
		if !strings.Contains(cspWeb+";", directive+";") {
			t.Errorf("the page's CSP lacks %q", directive)
		}
	}
	if strings.Contains(cspWeb, "unsafe") || strings.Contains(cspWeb, "*") || strings.Contains(cspWeb, "http") {
		t.Errorf("the page's CSP allows more than this server: %q", cspWeb)
	}
}

func TestOrderPageLoadsOnlyItsOwnFiles(t *testing.T) {
	f := newFixture(t)
	page := f.do(request(http.MethodGet, "/", "")).Body.String()
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(tag, ` src="`) {
			t.Errorf("inline script %s", tag)
		}
	}
	if strings.Contains(page, "style=") || strings.Contains(page, "<style") || strings.Contains(page, "http:") || strings.Contains(page, "https:") {
		t.Error("the page has an inline style or an absolute URL")
	}
	// Every file the page and its modules reference answers 200.
	seen := map[string]bool{}
	refRE := regexp.MustCompile(`(?:src|href)="([^"#]+)"`)
	importRE := regexp.MustCompile(`(?m)^import .* from "\./([^"]+)";$`)
	var todo []string
	for _, m := range refRE.FindAllStringSubmatch(page, -1) {
		todo = append(todo, "/"+strings.TrimPrefix(m[1], "./"))
	}
	for len(todo) > 0 {
		p := todo[0]
		todo = todo[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		rr := f.do(request(http.MethodGet, p, ""))
		if rr.Code != 200 {
			t.Errorf("the page references %s, which answers %d", p, rr.Code)
			continue
		}
		if strings.HasSuffix(p, ".js") {
			for _, m := range importRE.FindAllStringSubmatch(rr.Body.String(), -1) {
				todo = append(todo, "/app/"+m[1])
			}
		}
	}
	for _, want := range []string{"/app/app.js", "/app/api.js", "/app/follow.js", "/app/money.js", "/app/app.css", "/docs"} {
		if !seen[want] {
			t.Errorf("%s is not referenced (saw %v)", want, seen)
		}
	}
}
