package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/orderflow/orderflow"
)

// problemTypeBase prefixes every problem type URI; the rest is a stable slug.
const problemTypeBase = "https://orderflow.dev/problems/"

// Error codes that httpapi itself finds, next to the orderflow.E* codes.
const (
	codeBadRequest       = "bad_request"
	codeMalformedJSON    = "malformed_json"
	codeUnauthorized     = "unauthorized"
	codeBadCredentials   = "invalid_credentials"
	codeBadSignature     = "invalid_signature"
	codeURLExpired       = "url_expired"
	codeMethodNotAllowed = "method_not_allowed"
	codeInFlight         = "request_in_flight"
	codeTooLarge         = "payload_too_large"
	codeUnsupportedMedia = "unsupported_media_type"
	codeRateLimited      = "rate_limited"
	codeNotReady         = "not_ready"
	codeRequestTimeout   = "request_timeout"
	codeOrderFinal       = "order_final"
	codeTooManyStreams   = "too_many_streams"
	codeStreamsFull      = "streams_full"
	codeOverloaded       = "overloaded"
)

// unavailableRetryAfter is the Retry-After of 503 answers, in seconds.
const unavailableRetryAfter = "5"

// problemKind is what an error code means over HTTP.
type problemKind struct {
	status int
	slug   string // the last segment of the problem type URI
	title  string
}

// kindOf maps an error code to its status, type and title. This is the one
// place where codes meet HTTP statuses; an unknown code is a 500.
func kindOf(code string) problemKind {
	switch code {
	case codeBadRequest:
		return problemKind{http.StatusBadRequest, "bad-request", "Bad request"}
	case codeMalformedJSON:
		return problemKind{http.StatusBadRequest, "malformed-json", "Malformed JSON"}
	case codeUnauthorized:
		return problemKind{http.StatusUnauthorized, "unauthorized", "Missing or invalid bearer token"}
	case codeBadCredentials:
		return problemKind{http.StatusUnauthorized, "invalid-credentials", "Invalid credentials"}
	case codeBadSignature:
		return problemKind{http.StatusForbidden, "invalid-signature", "Invalid status URL signature"}
	case codeURLExpired:
		return problemKind{http.StatusForbidden, "status-url-expired", "Status URL expired"}
	case orderflow.ENotFound:
		return problemKind{http.StatusNotFound, "not-found", "Not found"}
	case codeMethodNotAllowed:
		return problemKind{http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed"}
	case orderflow.EConflict:
		return problemKind{http.StatusConflict, "conflict", "Conflict"}
	case codeOrderFinal:
		return problemKind{http.StatusConflict, "order-final", "Order is final and can no longer be cancelled"}
	case codeInFlight:
		return problemKind{http.StatusConflict, "request-in-flight", "A request with this idempotency key is in progress"}
	case codeRequestTimeout:
		return problemKind{http.StatusRequestTimeout, "request-timeout", "Request timeout"}
	case codeTooLarge:
		return problemKind{http.StatusRequestEntityTooLarge, "payload-too-large", "Request body too large"}
	case codeUnsupportedMedia:
		return problemKind{http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"}
	case orderflow.EInvalid:
		return problemKind{http.StatusUnprocessableEntity, "validation-failed", "Validation failed"}
	case orderflow.EMismatch:
		return problemKind{http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency key reused with a different request"}
	case codeRateLimited:
		return problemKind{http.StatusTooManyRequests, "rate-limited", "Too many requests"}
	case codeTooManyStreams:
		return problemKind{http.StatusTooManyRequests, "too-many-streams", "Too many status streams for this user"}
	case codeStreamsFull:
		return problemKind{http.StatusServiceUnavailable, "streams-full", "Too many status streams"}
	case codeOverloaded:
		return problemKind{http.StatusServiceUnavailable, "overloaded", "Too many orders waiting to be processed"}
	case orderflow.EUnavailable:
		return problemKind{http.StatusServiceUnavailable, "service-unavailable", "Service temporarily unavailable"}
	case orderflow.EStoreUnavailable:
		return problemKind{http.StatusServiceUnavailable, "store-unavailable", "Store unavailable"}
	case codeNotReady:
		return problemKind{http.StatusServiceUnavailable, "not-ready", "Not ready"}
	}
	return problemKind{http.StatusInternalServerError, "internal-error", "Internal server error"}
}

// clientError is a fault in the request that httpapi found itself. Its
// detail is meant for the client.
type clientError struct {
	code   string
	detail string
	field  string // the offending field of a body, if known
}

func (e *clientError) Error() string { return e.detail }

func newClientError(code, field, detail string) *clientError {
	return &clientError{code: code, field: field, detail: detail}
}

// fail answers with the problem for err. Errors from dependencies are
// mapped by their orderflow code; a 5xx is logged here, once, with its
// cause, while the client sees only a safe detail.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ce *clientError
	if errors.As(err, &ce) {
		var fields []FieldError
		if ce.field != "" {
			fields = []FieldError{{Field: ce.field, Detail: ce.detail}}
		}
		s.problem(w, r, ce.code, ce.detail, fields)
		return
	}
	code := orderflow.ErrorCode(err)
	var oe *orderflow.Error
	if !errors.As(err, &oe) && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		code = orderflow.EUnavailable // a dependency did not answer in time
	}
	detail := orderflow.ErrorDetail(err)
	switch kindOf(code).status {
	case http.StatusInternalServerError:
		s.log.ErrorContext(r.Context(), "request failed", "route", routeOf(r), "err", err)
		detail = "internal error; quote the request id when reporting it"
	case http.StatusServiceUnavailable:
		// A dependency that is down fails every request: one line per
		// route and interval. A damaged store has logged its error once,
		// at ERROR (the request line still shows each 503).
		if code != orderflow.EStoreUnavailable {
			s.logs.Log(r.Context(), slog.LevelWarn, "unavailable "+routeOf(r), "dependency unavailable", "route", routeOf(r), "err", err)
		}
		if oe == nil {
			detail = "a dependency did not answer in time; retry later"
		}
	}
	var fields []FieldError
	if f := orderflow.ErrorField(err); code == orderflow.EInvalid && f != "" {
		fields = []FieldError{{Field: f, Detail: detail}}
	}
	s.problem(w, r, code, detail, fields)
}

// problem writes the problem document for code.
func (s *server) problem(w http.ResponseWriter, r *http.Request, code, detail string, fields []FieldError) {
	k := kindOf(code)
	h := w.Header()
	// A damaged store is not back in a few seconds: no Retry-After.
	if k.status == http.StatusServiceUnavailable && code != orderflow.EStoreUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", unavailableRetryAfter)
	}
	if k.status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", `Bearer realm="orderflow"`)
	}
	writeJSON(w, r, k.status, contentProblem, s.newProblem(r, k, detail, fields))
}

func (s *server) newProblem(r *http.Request, k problemKind, detail string, fields []FieldError) *Problem {
	return &Problem{
		Type:      problemTypeBase + k.slug,
		Title:     k.title,
		Status:    k.status,
		Detail:    detail,
		Instance:  r.URL.Path,
		RequestID: orderflow.RequestID(r.Context()),
		Errors:    fields,
	}
}

// failureType is the problem type URI of an order failure reason.
func failureType(code string) string {
	return problemTypeBase + strings.ReplaceAll(code, "_", "-")
}

// failureTitle is the human title of an order failure reason.
func failureTitle(code string, status orderflow.Status) string {
	switch code {
	case orderflow.ReasonOutOfStock:
		return "Out of stock"
	case orderflow.ReasonUnknownSKU:
		return "Unknown SKU"
	case orderflow.ReasonFraudSuspected:
		return "Fraud suspected"
	case orderflow.ReasonPaymentDeclined:
		return "Payment declined"
	case orderflow.ReasonProcessingFailed:
		return "Processing failed"
	case orderflow.ReasonDeadLettered:
		return "Processing failed (dead-lettered)"
	}
	if status == orderflow.StatusRejected {
		return "Order rejected"
	}
	return "Order failed"
}
