package orderflow

import (
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxMessageBytes bounds a queue message body; ours are far smaller.
const MaxMessageBytes = 4096

// EncodeMessage renders m as a queue message body.
func EncodeMessage(m Message) []byte {
	// Invalid UTF-8 (which the api's request ids cannot contain) becomes
	// U+FFFD, as with encoding/json, so that this cannot fail.
	b, _ := json.Marshal(m, jsontext.AllowInvalidUTF8(true))
	return b
}

// DecodeMessage parses a queue message body. It rejects unknown fields,
// trailing data, oversized bodies and invalid order ids, so that a poison
// message is recognised rather than half-read.
func DecodeMessage(body []byte) (Message, error) {
	return decodeMessage(body, true)
}

// DecodeOrderID reads only the order id of a message body, leniently: it
// accepts what DecodeMessage rejects as long as the body is within
// MaxMessageBytes, is a JSON object and names a valid order id, so that
// the order of a poison message can still be found.
func DecodeOrderID(body []byte) (OrderID, error) {
	m, err := decodeMessage(body, false)
	return m.OrderID, err
}

func decodeMessage(body []byte, strict bool) (Message, error) {
	var m Message
	if len(body) > MaxMessageBytes {
		return m, Errorf(EInvalid, "message of %d bytes exceeds %d", len(body), MaxMessageBytes)
	}
	// json/v2's Unmarshal also rejects trailing data, duplicate and
	// wrongly cased names; it decodes a message in a quarter of the time
	// encoding/json's Decoder took.
	opts := json.RejectUnknownMembers(strict)
	if !strict {
		opts = json.JoinOptions(opts, json.MatchCaseInsensitiveNames(true),
			jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	}
	if err := json.Unmarshal(body, &m, opts); err != nil {
		return Message{}, &Error{Code: EInvalid, Detail: "message is not an order message", Err: err}
	}
	if !m.OrderID.Valid() {
		return Message{}, Errorf(EInvalid, "message order_id %q is not a valid order id", m.OrderID)
	}
	if !strict {
		return m, nil
	}
	if len(m.RequestID) > 128 || len(m.TraceParent) > 128 {
		return Message{}, Errorf(EInvalid, "message request_id or traceparent longer than 128")
	}
	return m, nil
}
