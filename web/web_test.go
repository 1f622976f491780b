package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// notFound answers 418 so that the tests can tell it from the page's answers.
var notFound = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
})

func get(t *testing.T, h http.Handler, method, path string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	return rr
}

func TestHandler(t *testing.T) {
	h := Handler(notFound)
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantType           string
	}{
		{"the page is at /", "GET", "/", 200, "text/html; charset=utf-8"},
		{"modules are JavaScript", "GET", "/app/app.js", 200, "text/javascript; charset=utf-8"},
		{"the stylesheet is CSS", "GET", "/app/app.css", 200, "text/css; charset=utf-8"},
		{"the icon is SVG", "GET", "/app/icon.svg", 200, "image/svg+xml"},
		{"HEAD gets the headers", "HEAD", "/", 200, "text/html; charset=utf-8"},
		{"the page is not also at /index.html", "GET", "/index.html", 418, ""},
		{"the page is not also at /app/index.html", "GET", "/app/index.html", 418, ""},
		{"an unknown file goes to notFound", "GET", "/app/nope.js", 418, ""},
		{"the asset folder itself goes to notFound", "GET", "/app/", 418, ""},
		{"a path outside the page goes to notFound", "GET", "/orders", 418, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := get(t, h, tt.method, tt.path)
			if rr.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rr.Code, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				return
			}
			if got := rr.Header().Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if got := rr.Header().Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", got)
			}
			if tt.method == "HEAD" && rr.Body.Len() != 0 {
				t.Errorf("HEAD answered %d bytes", rr.Body.Len())
			}
		})
	}
}

func TestETags(t *testing.T) {
	h := Handler(notFound)
	page, script := get(t, h, "GET", "/"), get(t, h, "GET", "/app/app.js")
	pe, se := page.Header().Get("ETag"), script.Header().Get("ETag")
	if !regexp.MustCompile(`^"[A-Za-z0-9_-]{16}"$`).MatchString(pe) || pe == se {
		t.Fatalf("ETags %q and %q: want distinct strong tags", pe, se)
	}
	t.Run("a matching If-None-Match is 304", func(t *testing.T) {
		if rr := get(t, h, "GET", "/", "If-None-Match", pe); rr.Code != 304 || rr.Body.Len() != 0 {
			t.Errorf("status %d with %d bytes, want 304", rr.Code, rr.Body.Len())
		}
	})
	t.Run("another file's ETag is not a match", func(t *testing.T) {
		if rr := get(t, h, "GET", "/", "If-None-Match", se); rr.Code != 200 {
			t.Errorf("status %d, want 200", rr.Code)
		}
	})
	t.Run("the ETag is the same from every handler (it names the content)", func(t *testing.T) {
		if again := get(t, Handler(notFound), "GET", "/").Header().Get("ETag"); again != pe {
			t.Errorf("ETag %q, then %q", pe, again)
		}
	})
}

func TestContentTypeOfUnknownExtension(t *testing.T) {
	if got := contentType(".wasm"); got != "application/octet-stream" {
		t.Errorf("got %q, want application/octet-stream", got)
	}
}

// readAll returns every embedded file by name.
func readAll(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(name)
		out[name] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The page runs under script-src 'self'; style-src 'self'; connect-src
// 'self' with no CDN: these rules keep it that way.
func TestAssetsNeedNoInlineCodeAndNoOtherOrigin(t *testing.T) {
	all := readAll(t)
	page := all["index.html"]
	t.Run("every script of the page is a module file of its own", func(t *testing.T) {
		tags := regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1)
		if len(tags) == 0 {
			t.Fatal("no script tag")
		}
		for _, tag := range tags {
			if !strings.Contains(tag, `type="module"`) || !strings.Contains(tag, ` src="app/`) {
				t.Errorf("script %s is not a module from app/", tag)
			}
		}
	})
	t.Run("no inline style and no event handler attributes", func(t *testing.T) {
		if regexp.MustCompile(`(?i)\sstyle=|<style|\son[a-z]+=`).MatchString(page) {
			t.Error("index.html has an inline style or an on* handler")
		}
	})
	t.Run("nothing is loaded from another origin", func(t *testing.T) {
		abs := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
		for name, body := range all {
			for _, m := range abs.FindAllString(body, -1) {
				if m == "http://www.w3.org" { // the SVG namespace, not a request
					continue
				}
				t.Errorf("%s refers to %s", name, m)
			}
		}
	})
	t.Run("every file the page names exists", func(t *testing.T) {
		for _, m := range regexp.MustCompile(`(?:src|href)="(app/[^"]+)"`).FindAllStringSubmatch(page, -1) {
			if _, ok := all[m[1]]; !ok {
				t.Errorf("index.html names %s, which is not embedded", m[1])
			}
		}
	})
	t.Run("every module import exists", func(t *testing.T) {
		importRE := regexp.MustCompile(`(?m)^import .* from "\./([^"]+)";$`)
		for name, body := range all {
			if !strings.HasSuffix(name, ".js") {
				continue
			}
			for _, m := range importRE.FindAllStringSubmatch(body, -1) {
				if _, ok := all["app/"+m[1]]; !ok {
					t.Errorf("%s imports %s, which is not embedded", name, m[1])
				}
			}
		}
	})
}

func TestScriptsKeepTheTokenOutOfURLsAndMarkup(t *testing.T) {
	for name, body := range readAll(t) {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		for _, bad := range []struct{ pattern, why string }{
			{`innerHTML|outerHTML|insertAdjacentHTML|document\.write`, "API text must never become markup"},
			{`localStorage`, "the token lives in sessionStorage or memory only"},
			{`eval\(|new Function`, "the CSP forbids eval"},
			{`[?&](token|access_token)=`, "the token never goes into a URL"},
			{`location\.(hash|search|href)\s*=`, "the page never puts state into its URL"},
		} {
			if regexp.MustCompile(bad.pattern).MatchString(body) {
				t.Errorf("%s matches %q: %s", name, bad.pattern, bad.why)
			}
		}
	}
}

func TestEveryStaticInputHasALabel(t *testing.T) {
	page := readAll(t)["index.html"]
	ids := regexp.MustCompile(`<(?:input|select|textarea)\b[^>]*\bid="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(ids) < 4 {
		t.Fatalf("found %d inputs, want the login and order fields", len(ids))
	}
	for _, m := range ids {
		if !strings.Contains(page, `<label for="`+m[1]+`"`) {
			t.Errorf("input #%s has no <label for>", m[1])
		}
	}
}
