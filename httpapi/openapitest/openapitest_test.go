package openapitest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const doc = `{
  "openapi": "3.1.0",
  "info": {"title": "t", "version": "1"},
  "paths": {
    "/things": {
      "post": {
        "parameters": [{"name": "Key", "in": "header", "schema": {"type": "string", "maxLength": 3}}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
          "type": "object", "required": ["n"], "additionalProperties": false,
          "properties": {"n": {"type": "integer"}}}}}},
        "responses": {
          "201": {"description": "made", "content": {"application/json": {"schema": {
            "type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}}}},
          "400": {"description": "bad", "content": {"application/problem+json": {"schema": {"type": "object"}}}}
        }
      }
    }
  }
}`

func TestCheck(t *testing.T) {
	c, err := New([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	post := func(body string, headers ...string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/things", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		return r
	}
	answer := func(status int, contentType string) *http.Response {
		return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {contentType}}}
	}
	tests := []struct {
		name     string
		req      *http.Request
		reqBody  string
		resp     *http.Response
		respBody string
		want     string // in the one violation expected; "" for none
	}{
		{"a conforming exchange passes", post(`{"n":1}`), `{"n":1}`, answer(201, "application/json"), `{"id":"a"}`, ""},
		{"a request breaking the document is reported", post(`{"n":"x"}`), `{"n":"x"}`, answer(201, "application/json"), `{"id":"a"}`, "request breaks openapi.json"},
		{"so is a header breaking it", post(`{"n":1}`, "Key", "long"), `{"n":1}`, answer(201, "application/json"), `{"id":"a"}`, "request breaks openapi.json"},
		{"a marked request that breaks the document and gets a 4xx passes", Invalid(post(`{"n":"x"}`)), `{"n":"x"}`, answer(400, "application/problem+json"), `{}`, ""},
		{"a marked request the document accepts is reported", Invalid(post(`{"n":1}`)), `{"n":1}`, answer(400, "application/problem+json"), `{}`, "openapi.json accepts it"},
		{"a marked request that is not refused is reported", Invalid(post(`{"n":"x"}`)), `{"n":"x"}`, answer(201, "application/json"), `{"id":"a"}`, "not a 4xx"},
		{"an undocumented status is reported", post(`{"n":1}`), `{"n":1}`, answer(409, "application/problem+json"), `{}`, "409 answer breaks openapi.json"},
		{"an undocumented media type is reported", post(`{"n":1}`), `{"n":1}`, answer(201, "text/plain"), `ok`, "201 answer breaks openapi.json"},
		{"a body breaking the schema is reported", post(`{"n":1}`), `{"n":1}`, answer(201, "application/json"), `{"id":7}`, "201 answer breaks openapi.json"},
		{"an undocumented path must be a 404 problem", httptest.NewRequest(http.MethodGet, "/nope", nil), "", answer(404, "application/problem+json"), `{}`, ""},
		{"an undocumented path answered otherwise is reported", httptest.NewRequest(http.MethodGet, "/nope", nil), "", answer(200, "text/html"), `<p>`, "must get a 404 or 405 problem"},
		{"an undocumented method must be a 405 problem", httptest.NewRequest(http.MethodGet, "/things", nil), "", answer(405, "application/problem+json"), `{}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Check(tt.req, []byte(tt.reqBody), tt.resp, []byte(tt.respBody))
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("violations %q, want none", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("violations %q, want one saying %q", got, tt.want)
			}
		})
	}
}

func TestNewRefusesAnInvalidDocument(t *testing.T) {
	if _, err := New([]byte(`{"openapi": "3.1.0", "paths": {}}`)); err == nil {
		t.Error("a document without info was taken")
	}
}
