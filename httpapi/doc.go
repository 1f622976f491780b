// Package httpapi is the order API over HTTP: login, order intake with
// idempotency keys and per-user rate limits, signed status URLs, order
// reads, health and readiness, metrics, and the OpenAPI document with its
// Swagger UI page (served from embedded assets, no internet needed). NewServer builds the whole handler; routes.go lists every route.
//
// Every error is an RFC 9457 problem (application/problem+json); the map
// from error code to HTTP status lives in problem.go and nowhere else.
package httpapi
