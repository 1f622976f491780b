package orderflow

import (
	"bytes"
	"encoding/json"
)

// MaxMessageBytes bounds a queue message body; ours are far smaller.
const MaxMessageBytes = 4096

// EncodeMessage renders m as a queue message body.
func EncodeMessage(m Message) []byte {
	b, _ := json.Marshal(m) // a struct of strings always marshals
	return b
}

// DecodeMessage parses a queue message body. It rejects unknown fields,
// trailing data, oversized bodies and invalid order ids, so that a poison
// message is recognised rather than half-read.
func DecodeMessage(body []byte) (Message, error) {
	var m Message
	if len(body) > MaxMessageBytes {
		return m, Errorf(EInvalid, "message of %d bytes exceeds %d", len(body), MaxMessageBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Message{}, &Error{Code: EInvalid, Detail: "message is not an order message", Err: err}
	}
	if dec.More() {
		return Message{}, Errorf(EInvalid, "message has trailing data")
	}
	if !m.OrderID.Valid() {
		return Message{}, Errorf(EInvalid, "message order_id %q is not a valid order id", m.OrderID)
	}
	if len(m.RequestID) > 128 || len(m.TraceParent) > 128 {
		return Message{}, Errorf(EInvalid, "message request_id or traceparent longer than 128")
	}
	return m, nil
}
