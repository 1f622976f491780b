package httpapi

import (
	"errors"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// integerUnmarshalers decode the integer fields of a request body (amount,
// quantity) the way JSON Schema reads "type": "integer", which is what
// openapi.json promises: any number whose value is whole, so 16777217.0
// and 1.6777217e7 are 16777217. The value is computed exactly from the
// literal, never through a float, which would round 9999999999.0000001 to
// a whole number. Other JSON kinds fall through to the default decoding
// (and its type error).
var integerUnmarshalers = json.WithUnmarshalers(json.JoinUnmarshalers(
	json.UnmarshalFromFunc(func(dec *jsontext.Decoder, v *int64) error {
		n, err := readInteger(dec, 64)
		*v = n
		return err
	}),
	json.UnmarshalFromFunc(func(dec *jsontext.Decoder, v *int) error {
		n, err := readInteger(dec, strconv.IntSize)
		*v = int(n)
		return err
	}),
))

// integerError says why a JSON number is not an integer of the field's
// size. decodeError turns it into the detail of a 422.
type integerError struct {
	literal    string
	outOfRange bool // whole, but too large for the field
}

func (e *integerError) Error() string {
	if e.outOfRange {
		return "number " + e.literal + " is out of range"
	}
	return "number " + e.literal + " is not an integer"
}

// readInteger reads a JSON number that must be a whole number fitting in
// a signed integer of bits bits; another kind is errors.ErrUnsupported (the next unmarshaler is tried).
func readInteger(dec *jsontext.Decoder, bits int) (int64, error) {
	if dec.PeekKind() != '0' {
		return 0, errors.ErrUnsupported
	}
	v, err := dec.ReadValue()
	if err != nil {
		return 0, err
	}
	n, ok, inRange := parseInteger(string(v), bits)
	if !ok || !inRange {
		return 0, &integerError{literal: string(v), outOfRange: ok}
	}
	return n, nil
}

// parseInteger returns the value of lit, a valid JSON number literal, if it
// is whole (ok) and fits in bits bits (inRange).
func parseInteger(lit string, bits int) (n int64, ok, inRange bool) {
	neg := strings.HasPrefix(lit, "-")
	lit = strings.TrimPrefix(lit, "-")
	mant, exp, _ := strings.Cut(strings.ToLower(lit), "e")
	whole, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(whole+frac, "0")
	scale := -len(frac) // digits × 10^scale is the value
	trimmed := strings.TrimRight(digits, "0")
	scale += len(digits) - len(trimmed)
	digits = trimmed
	if digits == "" {
		return 0, true, true // zero, however written
	}
	if exp != "" {
		e, err := strconv.Atoi(strings.TrimPrefix(exp, "+"))
		if err != nil || e > 1000 || e < -1000 {
			// An absurd exponent: the value is huge or a tiny fraction.
			return 0, !strings.HasPrefix(exp, "-"), false
		}
		scale += e
	}
	if scale < 0 {
		return 0, false, false // a nonzero digit after the point
	}
	if len(digits)+scale > 19 {
		return 0, true, false // beyond any int64
	}
	if neg {
		digits = "-" + digits
	}
	n, err := strconv.ParseInt(digits+strings.Repeat("0", scale), 10, bits)
	if err != nil {
		return 0, true, false
	}
	return n, true, true
}
