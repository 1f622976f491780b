// Package auth issues and verifies the credentials of orderflow: HS256 access
// tokens (JWT), the users file behind POST /login outside dev mode, and the
// HMAC-signed status URLs that let a client poll an order without a token.
//
// Secrets live in a Keyring; its first key signs and every key verifies, so
// a secret is rotated by putting the new key first and dropping the old one
// once everything it signed has expired. Every error that a client's input
// can cause wraps ErrInvalidToken or ErrBadSignature and has a message that is
// safe to show to that client.
package auth
