package httpapi

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/orderflow/orderflow"
)

// TestMain runs the tests, then checks that every status a test observed
// on a route is documented for that operation in openapi.json.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if problems := undocumentedStatuses(); len(problems) > 0 {
			fmt.Fprintln(os.Stderr, "FAIL: statuses observed in the tests but missing from openapi.json:")
			for _, p := range problems {
				fmt.Fprintln(os.Stderr, "  "+p)
			}
			code = 1
		}
	}
	os.Exit(code)
}

// openapiDoc is the part of the OpenAPI document the checks read.
type openapiDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		OperationID string `json:"operationId"`
		Parameters  []struct {
			Ref  string `json:"$ref"`
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
		Responses map[string]json.RawMessage `json:"responses"`
	} `json:"paths"`
	Components struct {
		Schemas   map[string]json.RawMessage `json:"schemas"`
		Responses map[string]json.RawMessage `json:"responses"`
	} `json:"components"`
}

func loadOpenAPI() (openapiDoc, error) {
	var d openapiDoc
	err := json.Unmarshal(openapiJSON, &d)
	return d, err
}

// patternParts splits "GET /orders/{id}" into get and /orders/{id}; the
// exact-match marker goes ("GET /{$}" is get and /).
func patternParts(pattern string) (method, path string) {
	m, p, _ := strings.Cut(pattern, " ")
	return strings.ToLower(m), strings.TrimSuffix(p, "{$}")
}

func undocumentedStatuses() []string {
	d, err := loadOpenAPI()
	if err != nil {
		return []string{"openapi.json: " + err.Error()}
	}
	observed.Lock()
	defer observed.Unlock()
	var out []string
	for pattern, codes := range observed.codes {
		method, path := patternParts(pattern)
		op, ok := d.Paths[path][method]
		if !ok {
			out = append(out, pattern+": no operation")
			continue
		}
		for code := range codes {
			if _, ok := op.Responses[strconv.Itoa(code)]; !ok {
				out = append(out, fmt.Sprintf("%s: %d", pattern, code))
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestOpenAPIDescribesEveryRouteAndNothingElse(t *testing.T) {
	d, err := loadOpenAPI()
	if err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if !strings.HasPrefix(d.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", d.OpenAPI)
	}
	f := newFixture(t)
	routes := map[string]bool{}
	for _, rt := range f.s.table {
		method, path := patternParts(rt.pattern)
		routes[method+" "+path] = true
		op, ok := d.Paths[path][method]
		if !ok {
			t.Errorf("route %s is not in openapi.json", rt.pattern)
			continue
		}
		if op.OperationID == "" || len(op.Responses) == 0 {
			t.Errorf("%s: operation lacks an operationId or responses", rt.pattern)
		}
		// Every path wildcard is a documented path parameter.
		for _, seg := range strings.Split(path, "/") {
			if !strings.HasPrefix(seg, "{") {
				continue
			}
			name := strings.Trim(seg, "{}")
			found := false
			for _, p := range op.Parameters {
				if p.Name == name && p.In == "path" || p.Ref == "#/components/parameters/OrderID" && name == "id" {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: path parameter %q is not documented", rt.pattern, name)
			}
		}
		// Every error response is a problem document (or plain text from net/http for ranges).
		for code, raw := range op.Responses {
			if code >= "400" && code != "416" && !strings.Contains(string(raw), "#/components/responses/") && !strings.Contains(string(raw), "application/problem+json") {
				t.Errorf("%s %s: error response is not a problem: %s", rt.pattern, code, raw)
			}
		}
	}
	for path, ops := range d.Paths {
		for method := range ops {
			if !routes[method+" "+path] {
				t.Errorf("openapi.json documents %s %s, which routes.go does not serve", strings.ToUpper(method), path)
			}
		}
	}
	refs := string(openapiJSON)
	for _, name := range []string{"Problem", "OrderRequest", "Accepted", "OrderStatus", "Order", "OrderPage", "Token", "LoginRequest"} {
		if _, ok := d.Components.Schemas[name]; !ok {
			t.Errorf("schema %s missing", name)
		}
	}
	// Every $ref resolves.
	for _, part := range strings.Split(refs, `"$ref": "#/components/`)[1:] {
		target, _, _ := strings.Cut(part, `"`)
		kind, name, _ := strings.Cut(target, "/")
		var all map[string]map[string]json.RawMessage
		_ = json.Unmarshal(openapiJSON, &struct {
			Components *map[string]map[string]json.RawMessage `json:"components"`
		}{&all})
		if _, ok := all[kind][name]; !ok {
			t.Errorf("$ref #/components/%s does not resolve", target)
		}
	}
}

func TestOpenAPIIsServed(t *testing.T) {
	f := newFixture(t)
	rr := f.do(request("GET", "/openapi.json", ""))
	if rr.Code != 200 || rr.Header().Get("Content-Type") != "application/json" || rr.Body.String() != string(openapiJSON) {
		t.Errorf("status %d, type %q, %d bytes", rr.Code, rr.Header().Get("Content-Type"), rr.Body.Len())
	}
}

// parameterPattern returns the schema pattern of the named parameter of an operation.
func parameterPattern(t *testing.T, path, method, name string) string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name   string `json:"name"`
				Schema struct {
					Pattern string `json:"pattern"`
				} `json:"schema"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range doc.Paths[path][method].Parameters {
		if p.Name == name {
			return p.Schema.Pattern
		}
	}
	t.Fatalf("%s %s has no parameter %s", method, path, name)
	return ""
}

// TestOpenAPIPatternsAreTheServersRules checks that the patterns of
// openapi.json accept exactly what the server accepts, on the edges of
// each rule (a pattern the server is stricter or looser than misleads
// clients and contract testers alike).
func TestOpenAPIPatternsAreTheServersRules(t *testing.T) {
	cursorOf := func(b byte) string {
		return encodeCursor(orderflow.OrderID(strings.Repeat(hex.EncodeToString([]byte{b}), 16)))
	}
	tests := []struct {
		path, method, param string
		server              func(string) bool
		values              []string
	}{
		{"/orders", "post", "Idempotency-Key",
			func(k string) bool { _, err := idempotencyKey(http.Header{"Idempotency-Key": {k}}); return err == nil },
			[]string{
				"a", `"`, `""`, `"a"`, `"a`, `a"`, " ", "~", "key-1",
				strings.Repeat("k", 255), strings.Repeat("k", 256),
				`"` + strings.Repeat("k", 255) + `"`, `"` + strings.Repeat("k", 256) + `"`,
				`"` + strings.Repeat("k", 254), strings.Repeat("k", 254) + `"`,
				"a\x01b", "a\x7fb", "a\tb", "é",
			}},
		{"/orders", "get", "cursor",
			func(c string) bool { _, err := decodeCursor(c); return err == nil },
			[]string{
				cursorOf(0x00), cursorOf(0xff), cursorOf(0x5a), encodeCursor(orderflow.NewOrderID(t0)),
				"", "zzz", `"x"`, strings.Repeat("A", 21), strings.Repeat("A", 23), strings.Repeat("A", 21) + "B",
				strings.Repeat("A", 21) + "=", strings.Repeat("A", 20) + "+A", strings.Repeat("A", 22) + "==",
			}},
	}
	for _, tt := range tests {
		re, err := regexp.Compile(parameterPattern(t, tt.path, tt.method, tt.param))
		if err != nil {
			t.Fatalf("%s pattern: %v", tt.param, err)
		}
		for _, v := range tt.values {
			if server, doc := tt.server(v), re.MatchString(v); server != doc {
				t.Errorf("%s %q (%d bytes): server accepts %v, openapi.json accepts %v", tt.param, v, len(v), server, doc)
			}
		}
	}
}

// The limits of an order in openapi.json are the domain's (the order page
// reads them from there, so this keeps the page's checks the server's).
// Each SKU and quantity on the edge of a rule is judged alike by
// Order.Validate and by the document.
func TestOpenAPIOrderLimitsAreTheDomains(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				Item struct {
					Properties struct {
						SKU struct {
							MinLength, MaxLength int
							Pattern              string
						} `json:"sku"`
						Quantity struct{ Minimum, Maximum int } `json:"quantity"`
					} `json:"properties"`
				} `json:"Item"`
				OrderRequest struct {
					Properties struct {
						Amount struct{ Minimum, Maximum int64 } `json:"amount"`
						Items  struct{ MaxItems int }           `json:"items"`
					} `json:"properties"`
				} `json:"OrderRequest"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatal(err)
	}
	item, req := doc.Components.Schemas.Item.Properties, doc.Components.Schemas.OrderRequest.Properties
	for _, c := range []struct {
		what      string
		got, want int64
	}{
		{"Item.sku.maxLength", int64(item.SKU.MaxLength), orderflow.MaxSKULength},
		{"Item.sku.minLength", int64(item.SKU.MinLength), 1},
		{"Item.quantity.minimum", int64(item.Quantity.Minimum), 1},
		{"Item.quantity.maximum", int64(item.Quantity.Maximum), orderflow.MaxQuantity},
		{"OrderRequest.amount.maximum", req.Amount.Maximum, orderflow.MaxAmount},
		{"OrderRequest.items.maxItems", int64(req.Items.MaxItems), orderflow.MaxItems},
	} {
		if c.got != c.want {
			t.Errorf("openapi.json %s = %d, the domain's is %d", c.what, c.got, c.want)
		}
	}
	re, err := regexp.Compile(item.SKU.Pattern)
	if err != nil {
		t.Fatalf("Item.sku.pattern: %v", err)
	}
	valid := func(it orderflow.Item) bool {
		o := orderflow.Order{UserID: "u", Amount: 1, Currency: "USD", Items: []orderflow.Item{it}}
		return o.Validate() == nil
	}
	for _, sku := range []string{"a", "A9", "w.-_", "-a", ".a", "_a", "a/b", "a b", "é", strings.Repeat("s", orderflow.MaxSKULength), strings.Repeat("s", orderflow.MaxSKULength+1)} {
		doc := re.MatchString(sku) && len(sku) >= item.SKU.MinLength && len(sku) <= item.SKU.MaxLength
		if server := valid(orderflow.Item{SKU: sku, Quantity: 1}); server != doc {
			t.Errorf("sku %q: server accepts %v, openapi.json accepts %v", sku, server, doc)
		}
	}
}

// Config.Version is served as info.version, the rest of the document as
// it is.
func TestOpenAPIInfoVersion(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *Deps) { c.Version = `v1.2.3-rc.1+"x"` })
	rr := f.do(request("GET", "/openapi.json", ""))
	var served, embedded map[string]any
	if err := json.Unmarshal(rr.Body.Bytes(), &served); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(openapiJSON, &embedded); err != nil {
		t.Fatal(err)
	}
	if v := served["info"].(map[string]any)["version"]; v != `v1.2.3-rc.1+"x"` {
		t.Errorf("info.version %v, want the binary's", v)
	}
	embedded["info"].(map[string]any)["version"] = `v1.2.3-rc.1+"x"`
	if !reflect.DeepEqual(served, embedded) {
		t.Error("the served document differs from openapi.json in more than info.version")
	}
}
