// Package openapitest checks HTTP exchanges against the API's OpenAPI 3.1
// document (httpapi/openapi.json), so that every request a test makes and
// every answer it gets prove that the server and its contract agree. Only
// tests import it; it wraps github.com/pb33f/libopenapi-validator.
//
// The rules of an exchange, checked by Contract.Check:
//
//   - A request must conform to the document, unless the test marked it
//     with Invalid: then it must break the document (else the document is
//     looser than the test thinks the server is) and its answer must be a
//     4xx.
//   - Every answer must be documented for its operation: status, media
//     type, body schema (formats such as date-time included) and headers.
//   - A request for a path or method the document does not describe (or a
//     path that only some routers would map to a documented one, such as
//     /docs/..%2fopenapi.json) must get the 404 or 405 problem that the
//     document's description promises.
package openapitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"
)

// Contract checks exchanges against one OpenAPI document. It is safe for
// concurrent use.
type Contract struct {
	mu sync.Mutex // the validator's caches are not documented as safe for concurrent use
	v  validator.Validator
}

// New parses doc, an OpenAPI 3.1 document in JSON, and fails if the
// document itself is invalid.
func New(doc []byte) (*Contract, error) {
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		return nil, fmt.Errorf("parse openapi document: %w", err)
	}
	v, errs := validator.NewValidator(d, config.WithFormatAssertions())
	if len(errs) > 0 {
		return nil, fmt.Errorf("build openapi model: %w", errors.Join(errs...))
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		return nil, fmt.Errorf("openapi document is invalid: %s", strings.Join(describe(verrs), "; "))
	}
	return &Contract{v: v}, nil
}

type invalidKey struct{}

// Invalid marks req as breaking the contract on purpose (a test of how
// the server refuses it): Check then demands that the document refuses it
// too and that the answer is a 4xx.
func Invalid(req *http.Request) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), invalidKey{}, true))
}

// IsInvalid reports whether req was marked with Invalid.
func IsInvalid(req *http.Request) bool {
	v, _ := req.Context().Value(invalidKey{}).(bool)
	return v
}

// Check validates one exchange: req with its body reqBody, answered by
// resp with its body respBody (the bodies are passed separately because
// both have been read by then). It returns the violations, one sentence
// each, or nil.
func (c *Contract) Check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	what := req.Method + " " + req.URL.RequestURI()
	_, reqErrs := c.v.ValidateHttpRequestSync(withBody(req, reqBody))
	for _, e := range reqErrs {
		if e.IsPathMissingError() || e.IsOperationMissingError() || e.ValidationSubType == helpers.ValidationAmbiguousPath {
			return checkUndocumented(what, resp)
		}
	}
	var out []string
	switch {
	case IsInvalid(req) && len(reqErrs) == 0:
		out = append(out, what+": the test sends it as breaking the contract, but openapi.json accepts it")
	case IsInvalid(req) && (resp.StatusCode < 400 || resp.StatusCode > 499):
		out = append(out, fmt.Sprintf("%s: breaks the contract (%s) but the server answered %d, not a 4xx",
			what, strings.Join(describe(reqErrs), "; "), resp.StatusCode))
	case !IsInvalid(req):
		for _, d := range describe(reqErrs) {
			out = append(out, what+": request breaks openapi.json: "+d)
		}
	}
	r := *resp
	r.Body = io.NopCloser(bytes.NewReader(respBody))
	if _, respErrs := c.v.ValidateHttpResponse(withBody(req, reqBody), &r); len(respErrs) > 0 {
		for _, d := range describe(respErrs) {
			out = append(out, fmt.Sprintf("%s: %d answer breaks openapi.json: %s", what, resp.StatusCode, d))
		}
	}
	return out
}

// checkUndocumented holds an answer to a request outside the document to
// the document's promise: 404 or 405, as a problem.
func checkUndocumented(what string, resp *http.Response) []string {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed) && mt == "application/problem+json" {
		return nil
	}
	return []string{fmt.Sprintf("%s: not in openapi.json, so it must get a 404 or 405 problem; got %d %q", what, resp.StatusCode, mt)}
}

// withBody returns a shallow copy of req that reads body.
func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return r
}

// describe renders validation errors with their schema details.
func describe(errs []*verrors.ValidationError) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		s := e.Message
		if e.Reason != "" {
			s += " (" + e.Reason + ")"
		}
		for _, f := range e.SchemaValidationErrors {
			s += "; " + f.Error()
		}
		out = append(out, s)
	}
	return out
}

// Transport returns an http.RoundTripper that sends requests through next
// (http.DefaultTransport if nil) and reports every violation of the
// exchange on t with t.Errorf. It reads each answer in full before
// returning it (with its body intact), so it is not for streams.
func (c *Contract) Transport(t testing.TB, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripper{c: c, t: t, next: next}
}

type roundTripper struct {
	c    *Contract
	t    testing.TB
	next http.RoundTripper
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := rt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read response body: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	for _, v := range rt.c.Check(req, reqBody, resp, respBody) {
		rt.t.Errorf("contract: %s", v)
	}
	return resp, nil
}
