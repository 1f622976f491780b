package orderflow

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to exactly one HTTP status, in httpapi.
const (
	EInvalid     = "invalid"     // input breaks a rule (422)
	ENotFound    = "not_found"   // no such thing, or not yours (404)
	EConflict    = "conflict"    // state changed underneath, or request in flight (409)
	EMismatch    = "mismatch"    // idempotency key reused with another body (422)
	EUnavailable = "unavailable" // a dependency is down or slow; retry later (503)
	EInternal    = "internal"    // a bug (500)

	// EStoreUnavailable: the store cannot serve the request until an
	// operator repairs it (a corrupted database file); retrying does not
	// help (503 without Retry-After).
	EStoreUnavailable = "store_unavailable"
)

// Error is a domain error with a stable code and a human detail. Adapters
// wrap the cause in Err so that errors.Is/As still see it. Field names the
// offending field of an EInvalid error in the API's notation (amount,
// items[0].sku), when the error is about one.
type Error struct {
	Code   string
	Detail string
	Field  string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		if e.Detail == "" {
			return e.Code + ": " + e.Err.Error()
		}
		return e.Detail + ": " + e.Err.Error()
	}
	if e.Detail == "" {
		return e.Code
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted detail.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Invalid returns an EInvalid *Error about field, with a formatted detail.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// Unavailable wraps err as an EUnavailable error: the caller may retry.
func Unavailable(err error, format string, args ...any) *Error {
	return &Error{Code: EUnavailable, Detail: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorDetail returns the human detail of the first *Error in err's chain,
// or a generic text for other errors (whose text may leak internals).
func ErrorDetail(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Detail != "" {
		return e.Detail
	}
	return "internal error"
}

// ErrorField returns the Field of the first *Error in err's chain, or "".
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
