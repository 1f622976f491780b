package httpapi

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/orderflow/orderflow"
)

// decodeOptions make decoding strict: member names match case-sensitively
// (the json/v2 default), duplicate names and invalid UTF-8 are errors (also
// defaults), unknown members are rejected, and so is trailing data. An
// integer may be written as any whole number (integerUnmarshalers).
var decodeOptions = json.JoinOptions(json.RejectUnknownMembers(true), integerUnmarshalers)

// decodeOrder parses the body of POST /orders for the authenticated user
// and returns the order it asks for (without id, status or times), already
// validated. Errors are *clientError: malformed JSON is codeMalformedJSON
// (400); an unknown field, a wrong type, a duplicate field, a user_id other
// than the token's, or a broken domain rule is orderflow.EInvalid (422)
// naming the field.
func decodeOrder(body []byte, user string) (orderflow.Order, error) {
	if len(body) == 0 {
		return orderflow.Order{}, newClientError(codeBadRequest, "", "request body is empty; send a JSON order such as {\"amount\":999}")
	}
	var req OrderRequest
	if err := json.Unmarshal(body, &req, decodeOptions); err != nil {
		return orderflow.Order{}, decodeError(body, err)
	}
	if string(bytes.TrimSpace(body)) == "null" {
		return orderflow.Order{}, newClientError(orderflow.EInvalid, "", "request body must be a JSON object")
	}
	if req.UserID != "" && req.UserID != user {
		return orderflow.Order{}, newClientError(orderflow.EInvalid, "user_id",
			"user_id must match the authenticated user (the token's subject) or be left out")
	}
	if req.Currency == "" {
		req.Currency = orderflow.DefaultCurrency
	}
	o := orderflow.Order{UserID: user, Amount: req.Amount, Currency: req.Currency, Items: req.Items}
	if err := o.Validate(); err != nil {
		return orderflow.Order{}, newClientError(orderflow.EInvalid, orderflow.ErrorField(err), orderflow.ErrorDetail(err))
	}
	return o, nil
}

// decodeError turns a json/v2 error from decoding body into a client
// error that names the offending field in the API's notation
// (items[0].quantity). A body that is not JSON is malformed (400) whatever
// the decoder met first: it reports a wrong type (the array of "[1,") or a
// duplicate name before it reaches the broken syntax.
func decodeError(body []byte, err error) error {
	var raw jsontext.Value
	if serr := json.Unmarshal(body, &raw, jsontext.AllowDuplicateNames(true)); serr != nil {
		err = serr
	}
	var se *json.SemanticError
	var syn *jsontext.SyntacticError
	var ie *integerError
	switch {
	case errors.As(err, &syn) && errors.Is(err, jsontext.ErrDuplicateName):
		field := fieldName(syn.JSONPointer)
		return newClientError(orderflow.EInvalid, field, field+" appears more than once")
	case errors.As(err, &syn):
		return newClientError(codeMalformedJSON, "", "request body is not valid JSON (at byte "+
			strconv.FormatInt(syn.ByteOffset, 10)+"): "+syntaxReason(syn.Err))
	case errors.As(err, &se) && errors.Is(err, json.ErrUnknownName):
		field := fieldName(se.JSONPointer)
		return newClientError(orderflow.EInvalid, field, "unknown field "+field+
			" (the fields are user_id, amount, currency, items[].sku and items[].quantity)")
	case errors.As(err, &se) && errors.As(err, &ie):
		field := fieldName(se.JSONPointer)
		if ie.outOfRange {
			return newClientError(orderflow.EInvalid, field, field+" is out of range")
		}
		return newClientError(orderflow.EInvalid, field, field+" must be an integer, got "+truncate(ie.literal, 32))
	case errors.As(err, &se):
		field := fieldName(se.JSONPointer)
		want := describeType(se.GoType)
		if field == "" {
			return newClientError(orderflow.EInvalid, "", "request body must be a JSON object")
		}
		got := ""
		if se.JSONKind != 0 {
			got = ", got " + describeKind(se.JSONKind)
			if se.JSONKind == '0' && len(se.JSONValue) > 0 && len(se.JSONValue) <= 32 {
				got += " " + string(se.JSONValue)
			}
		}
		return newClientError(orderflow.EInvalid, field, field+" must be "+want+got)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return newClientError(codeMalformedJSON, "", "request body is not valid JSON: unexpected end of input")
	}
	return newClientError(codeMalformedJSON, "", "request body is not valid JSON")
}

// syntaxReason is the reason of a syntax error without the package prefix.
func syntaxReason(err error) string {
	if err == nil {
		return "syntax error"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return strings.TrimPrefix(err.Error(), "jsontext: ")
}

// fieldName renders a JSON pointer ("/items/0/sku") as items[0].sku.
func fieldName(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// describeType names the JSON a Go type wants, for error details.
func describeType(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "of another type"
}

// describeKind names a JSON kind for error details.
func describeKind(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "another kind"
}

// truncate shortens s to at most n bytes, marking a cut with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
