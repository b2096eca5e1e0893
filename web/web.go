package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed index.html app.js style.css favicon.svg i18n
var files embed.FS

// contentSecurityPolicy lets the page load only its own files and call only
// its own origin: no inline script, no eval, no frame, no form posted away.
// Images may also be blob: URLs, which is how the page previews a file it
// fetched with its Authorization header.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

// FS returns the UI's files, rooted where index.html is.
func FS() fs.FS { return files }

// Handler serves the UI's files to GET and HEAD, with a Content-Security-
// Policy on every answer. It checks nothing else: the files hold no data,
// and whoever mounts it applies the Host and Origin checks.
func Handler() http.Handler {
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, r.Method+" is not allowed on "+r.URL.Path, http.StatusMethodNotAllowed)
			return
		}
		fileServer.ServeHTTP(w, r)
	})
}
