package auth

import "errors"

// ErrInvalidToken is wrapped by every error Tokens.Verify returns.
var ErrInvalidToken = errors.New("invalid token")

// ErrExpiredToken is wrapped by the error Tokens.Verify returns for a token
// past its expiry (and leeway). It also matches ErrInvalidToken.
var ErrExpiredToken error = &kindError{msg: "token expired", parent: ErrInvalidToken}

// ErrBadSignature is wrapped by every error URLSigner.Verify returns.
var ErrBadSignature = errors.New("bad status URL signature")

// ErrURLExpired is wrapped by the error URLSigner.Verify returns for a
// correctly signed URL past its expiry. It also matches ErrBadSignature.
var ErrURLExpired error = &kindError{msg: "status URL expired", parent: ErrBadSignature}

// kindError is a sentinel that also matches a more general sentinel.
type kindError struct {
	msg    string
	parent error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.parent }

// rejection is what Verify methods return: a reason safe to show the client,
// the sentinel it belongs to, and the underlying cause (for errors.Is/As and
// debugging; never part of the message).
type rejection struct {
	reason string
	kind   error
	cause  error
}

func (e *rejection) Error() string { return e.reason }

func (e *rejection) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func reject(kind error, reason string, cause error) error {
	return &rejection{reason: reason, kind: kind, cause: cause}
}
