package web

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// files are the page and its assets: index.html and app/*.
//
//go:embed index.html app
var files embed.FS

// AssetPrefix is the URL path under which Handler serves the page's files
// (app.js, app.css, ...); the page itself is at /.
const AssetPrefix = "/app/"

// contentType is the type of a page file by its extension, fixed here
// rather than taken from the system's MIME tables, which differ between
// machines.
func contentType(ext string) string {
	switch ext {
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// asset is one embedded file, read once.
type asset struct {
	body        string
	etag        string
	contentType string
}

// Handler serves the page: GET / answers index.html and GET /app/{file}
// the file of that name. Answers carry a strong ETag (If-None-Match gives
// 304) and Cache-Control: no-cache, so that a browser revalidates instead
// of running a stale page after an upgrade. Any other path, and any file
// that does not exist, is passed to notFound. The caller routes only GET
// and HEAD here and sets the Content-Security-Policy.
func Handler(notFound http.Handler) http.Handler {
	assets := make(map[string]asset)
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		assets["/"+name] = asset{
			body:        string(b),
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
			contentType: contentType(path.Ext(name)),
		}
		return nil
	})
	if err != nil {
		panic("web: read embedded files: " + err.Error()) // cannot happen: the files are compiled in
	}
	page := assets["/index.html"]
	delete(assets, "/index.html")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a asset
		var ok bool
		switch p := r.URL.Path; {
		case p == "/":
			a, ok = page, true
		case strings.HasPrefix(p, AssetPrefix):
			a, ok = assets[p]
		}
		if !ok {
			notFound.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(a.body))
	})
}
