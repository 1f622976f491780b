// Package web holds the order page that the api serves at / : plain HTML,
// CSS and JavaScript modules embedded in the binary, with no build step,
// no CDN and no inline script or style, so that the page runs under a
// strict Content-Security-Policy (script-src 'self'; style-src 'self').
//
// The page logs in (POST /login), places orders (POST /orders with an
// Idempotency-Key), follows each one on its signed status URL (honouring
// Retry-After and answering ETags with If-None-Match), and lists the
// user's recent orders (GET /orders, GET /orders/{id}). The bearer token
// lives in sessionStorage, never in a URL.
package web
