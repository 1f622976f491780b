package httpapi

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"time"

	swaggerfiles "github.com/swaggo/files/v2"

	"github.com/orderflow/orderflow"
)

// openapiJSON is the OpenAPI 3.1 description of every route; it is kept
// by hand next to routes.go, and a test checks that the two agree.
//
//go:embed openapi.json
var openapiJSON []byte

// pages holds our own HTML pages and the Swagger UI initializer: no inline
// script anywhere, so the pages run under a strict Content-Security-Policy.
//
//go:embed assets
var pages embed.FS

// handleOpenAPI serves GET /openapi.json.
func (s *server) handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		writeBytes(w, r, http.StatusOK, contentJSON, s.openapi)
	})
}

// withInfoVersion returns doc with its info.version (the first "version"
// member, which openapi.json keeps right after info.title) set to
// version, the rest byte for byte; doc itself when version is empty.
func withInfoVersion(doc []byte, version string) []byte {
	if version == "" {
		return doc
	}
	const key = `"version": "`
	info := bytes.Index(doc, []byte(`"info": {`))
	i := bytes.Index(doc, []byte(key))
	if info < 0 || i < info {
		panic("httpapi: openapi.json has no info.version") // caught by the tests
	}
	start := i + len(key) - 1
	end := start + 1 + bytes.IndexByte(doc[start+1:], '"') + 1
	quoted, _ := json.Marshal(version)
	out := make([]byte, 0, len(doc)+len(quoted))
	out = append(out, doc[:start]...)
	out = append(out, quoted...)
	return append(out, doc[end:]...)
}

// handleSwaggerPage serves GET /docs, Swagger UI on /openapi.json.
func (s *server) handleSwaggerPage() http.Handler {
	return s.page("assets/swagger/index.html", cspSwagger)
}

// handleRedocMoved serves GET /redoc, where ReDoc was, with a permanent
// redirect to Swagger UI. No maintained Go module ships a current ReDoc:
// the one that did (github.com/mvrilo/go-redoc) embeds a 2021 release and
// brings gin, fiber and echo into the module graph, and the other API
// viewers' Go modules load their scripts from a CDN, which the docs must
// not need. Swagger UI comes from github.com/swaggo/files/v2.
func (s *server) handleRedocMoved() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/docs", http.StatusMovedPermanently)
	})
}

// page serves one of our HTML pages under the given CSP.
func (s *server) page(name, csp string) http.Handler {
	body, err := pages.ReadFile(name)
	if err != nil {
		panic("httpapi: missing embedded page " + name) // caught by the tests
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Cache-Control", "no-cache")
		writeBytes(w, r, http.StatusOK, contentHTML, body)
	})
}

// handleSwaggerAsset serves GET /docs/{file}: Swagger UI's scripts, styles
// and icons from github.com/swaggo/files/v2, and our initializer.js.
func (s *server) handleSwaggerAsset() http.Handler {
	// The files of Swagger UI's dist that are served. Its own index.html
	// and initializer are not: ours replace them.
	swaggerAssets := map[string]bool{
		"swagger-ui.css":                  true,
		"swagger-ui-bundle.js":            true,
		"swagger-ui-standalone-preset.js": true,
		"index.css":                       true,
		"favicon-16x16.png":               true,
		"favicon-32x32.png":               true,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		var fsys fs.FS = swaggerfiles.FS
		if name == "initializer.js" {
			fsys, name = pages, "assets/swagger/initializer.js"
		} else if !swaggerAssets[name] {
			s.problem(w, r, orderflow.ENotFound, "no documentation asset "+name, nil)
			return
		}
		f, err := fsys.Open(name)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		defer f.Close()
		rs, ok := f.(io.ReadSeeker)
		if !ok {
			s.fail(w, r, errors.New("embedded asset "+name+" is not seekable"))
			return
		}
		s.serveAsset(w, r, name, rs)
	})
}

// serveAsset serves a static documentation asset with a long cache life
// (they change only when the modules are upgraded).
func (s *server) serveAsset(w http.ResponseWriter, r *http.Request, name string, content io.ReadSeeker) {
	w.Header().Set("Cache-Control", "public, max-age=604800")
	http.ServeContent(w, r, name, time.Time{}, content)
}
