package httpapi

import "net/http"

// route is one entry of the route table: a method pattern of net/http's
// ServeMux and its handler.
type route struct {
	pattern string
	handler http.Handler
}

// routes lists every route of the API. openapi.json documents each of
// them (a test checks that the two agree). A GET pattern also serves HEAD.
func (s *server) routes() []route {
	page := s.handleOrderPage()
	return []route{
		{"GET /{$}", page},
		{"GET /app/{file}", page},

		{"POST /login", s.handleLogin()},

		{"POST /orders", s.authenticate(s.handleCreateOrder())},
		{"GET /orders", s.authenticate(s.handleListOrders())},
		{"GET /orders/{id}", s.authenticate(s.handleGetOrder())},
		{"POST /orders/{id}/cancel", s.authenticate(s.handleCancelOrder())},
		{"GET /orders/{id}/status", s.handleOrderStatus()},

		{"GET /health", s.handleHealth()},
		{"GET /ready", s.handleReady()},
		{"GET /metrics", s.handleMetrics()},

		{"GET /openapi.json", s.handleOpenAPI()},
		{"GET /docs", s.handleSwaggerPage()},
		{"GET /docs/{file}", s.handleSwaggerAsset()},
		{"GET /redoc", s.handleRedocMoved()},
	}
}
