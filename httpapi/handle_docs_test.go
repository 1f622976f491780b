package httpapi

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/httpapi/openapitest"
)

func TestDocsAreServedOffline(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, path, wantType, wantBody, wantCSP string
		wantCache                               string
	}{
		{"the Swagger UI page is our HTML", "/docs", "text/html; charset=utf-8", `<script src="/docs/initializer.js">`, cspSwagger, "no-cache"},
		{"our initializer points Swagger UI at /openapi.json", "/docs/initializer.js", "text/javascript; charset=utf-8", `url: "/openapi.json"`, cspAPI, "public, max-age=604800"},
		{"the Swagger UI bundle is JavaScript", "/docs/swagger-ui-bundle.js", "text/javascript; charset=utf-8", "SwaggerUIBundle", cspAPI, "public, max-age=604800"},
		{"the standalone preset is JavaScript", "/docs/swagger-ui-standalone-preset.js", "text/javascript; charset=utf-8", "SwaggerUIStandalonePreset", cspAPI, "public, max-age=604800"},
		{"the Swagger UI styles are CSS", "/docs/swagger-ui.css", "text/css; charset=utf-8", ".swagger-ui", cspAPI, "public, max-age=604800"},
		{"the index styles are CSS", "/docs/index.css", "text/css; charset=utf-8", "", cspAPI, "public, max-age=604800"},
		{"the favicon is PNG", "/docs/favicon-32x32.png", "image/png", "PNG", cspAPI, "public, max-age=604800"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := f.do(request(http.MethodGet, tt.path, ""))
			if rr.Code != 200 {
				t.Fatalf("status %d", rr.Code)
			}
			if got := rr.Header().Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if !strings.Contains(rr.Body.String(), tt.wantBody) {
				t.Errorf("body lacks %q", tt.wantBody)
			}
			if got := rr.Header().Get("Content-Security-Policy"); got != tt.wantCSP {
				t.Errorf("CSP = %q, want %q", got, tt.wantCSP)
			}
			if got := rr.Header().Get("Cache-Control"); got != tt.wantCache {
				t.Errorf("Cache-Control = %q, want %q", got, tt.wantCache)
			}
		})
	}
	t.Run("our pages load every script from this server and have no inline script", func(t *testing.T) {
		scriptRE := regexp.MustCompile(`<script[^>]*>`)
		refRE := regexp.MustCompile(`(?:src|href)="([^"]+)"`)
		for _, page := range []string{"/docs"} {
			body := f.do(request(http.MethodGet, page, "")).Body.String()
			for _, tag := range scriptRE.FindAllString(body, -1) {
				if !strings.Contains(tag, `src="/`) {
					t.Errorf("%s: inline or external script %s", page, tag)
				}
			}
			if strings.Contains(body, "style=") || strings.Contains(body, "<style") || strings.Contains(body, "http") {
				t.Errorf("%s has inline style or an absolute URL", page)
			}
			for _, m := range refRE.FindAllStringSubmatch(body, -1) {
				if rr := f.do(request(http.MethodGet, m[1], "")); rr.Code != 200 {
					t.Errorf("%s references %s, which answers %d", page, m[1], rr.Code)
				}
			}
		}
	})
	t.Run("/redoc, where ReDoc was, moved to Swagger UI for good", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			rr := f.do(request(method, "/redoc", ""))
			if rr.Code != http.StatusMovedPermanently || rr.Header().Get("Location") != "/docs" {
				t.Errorf("%s /redoc: %d, Location %q; want 301 to /docs", method, rr.Code, rr.Header().Get("Location"))
			}
		}
		if rr := f.do(openapitest.Invalid(request(http.MethodGet, "/redoc/redoc.standalone.js", ""))); rr.Code != 404 {
			t.Errorf("ReDoc's old script: %d, want 404", rr.Code)
		}
	})
	t.Run("Swagger UI's own index and initializer are not served", func(t *testing.T) {
		for _, p := range []string{"/docs/index.html", "/docs/swagger-initializer.js", "/docs/swagger-ui-bundle.js.map", "/docs/..%2fopenapi.json"} {
			rr := f.do(openapitest.Invalid(request(http.MethodGet, p, ""))) // not a documented file
			if rr.Code != 404 {
				t.Errorf("%s: status %d, want 404", p, rr.Code)
			}
		}
	})
	t.Run("HEAD and ranges work on assets", func(t *testing.T) {
		head := f.do(request(http.MethodHead, "/docs/swagger-ui-bundle.js", ""))
		if head.Code != 200 || head.Body.Len() != 0 || head.Header().Get("Content-Length") == "" {
			t.Errorf("HEAD: %d, %d bytes, Content-Length %q", head.Code, head.Body.Len(), head.Header().Get("Content-Length"))
		}
		part := f.do(request(http.MethodGet, "/docs/swagger-ui.css", "", "Range", "bytes=0-9"))
		if part.Code != 206 || part.Body.Len() != 10 {
			t.Errorf("Range: %d, %d bytes", part.Code, part.Body.Len())
		}
		bad := f.do(request(http.MethodGet, "/docs/swagger-ui-bundle.js", "", "Range", "bytes=99999999-"))
		if bad.Code != 416 {
			t.Errorf("unsatisfiable Range: %d, want 416", bad.Code)
		}
		if h := f.do(request(http.MethodHead, "/docs", "")); h.Code != 200 || h.Body.Len() != 0 {
			t.Errorf("HEAD /docs: %d, %d bytes", h.Code, h.Body.Len())
		}
	})
}
