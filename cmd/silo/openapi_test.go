package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/internal/trust"
)

// openAPI is doc/rest-api.yaml, read as plain maps.
type openAPI struct {
	doc map[string]any
}

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "doc", "rest-api.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("doc/rest-api.yaml: %v", err)
	}
	return &openAPI{doc: doc}
}

// resolve follows a $ref ("#/components/...") to what it names.
func (o *openAPI) resolve(m map[string]any) map[string]any {
	for {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var cur any = o.doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = cur.(map[string]any)[part]
		}
		m = cur.(map[string]any)
	}
}

// check says where v, decoded JSON, breaks schema s: a missing required
// property, a value of another type or outside an enum. It reads the part
// of OpenAPI 3.0's schemas that the description uses.
func (o *openAPI) check(s map[string]any, v any, at string) error {
	s = o.resolve(s)
	if v == nil {
		if s["nullable"] == true || s["type"] == nil && s["allOf"] == nil && s["oneOf"] == nil {
			return nil
		}
		return fmt.Errorf("%s: null", at)
	}
	for _, sub := range items(s["allOf"]) {
		if err := o.check(sub.(map[string]any), v, at); err != nil {
			return err
		}
	}
	if one := items(s["oneOf"]); len(one) > 0 {
		var errs []string
		for _, sub := range one {
			err := o.check(sub.(map[string]any), v, at)
			if err == nil {
				errs = nil
				break
			}
			errs = append(errs, err.Error())
		}
		if errs != nil {
			return fmt.Errorf("%s: none of oneOf: %s", at, strings.Join(errs, "; "))
		}
	}
	if enum := items(s["enum"]); len(enum) > 0 && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		return fmt.Errorf("%s: %v is not one of %v", at, v, enum)
	}
	typ := s["type"]
	if typ == nil && (s["properties"] != nil || s["required"] != nil || s["additionalProperties"] != nil) {
		typ = "object" // as in the second half of an allOf
	}
	switch typ {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T, not an object", at, v)
		}
		for _, r := range items(s["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				return fmt.Errorf("%s: no %q", at, r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			sub, ok := props[k].(map[string]any)
			if !ok {
				sub, ok = s["additionalProperties"].(map[string]any)
			}
			if !ok {
				continue
			}
			if err := o.check(sub, obj[k], at+"."+k); err != nil {
				return err
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: %T, not an array", at, v)
		}
		for i, item := range arr {
			if err := o.check(s["items"].(map[string]any), item, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s: %T, not a string", at, v)
		}
	case "integer", "number":
		n, ok := v.(float64)
		if !ok || typ == "integer" && n != math.Trunc(n) {
			return fmt.Errorf("%s: %v, not an %s", at, v, typ)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: %T, not a boolean", at, v)
		}
	}
	return nil
}

func items(v any) []any { l, _ := v.([]any); return l }

// operations are the documented methods of a path, with the parameters
// of the path and of each method.
func (o *openAPI) operations(item map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, m := range []string{"get", "put", "patch", "post", "delete"} {
		if op, ok := item[m].(map[string]any); ok {
			out[m] = op
		}
	}
	return out
}

// hasQuery says whether op takes the query parameter name.
func (o *openAPI) hasQuery(op map[string]any, name string) bool {
	for _, p := range items(op["parameters"]) {
		p := o.resolve(p.(map[string]any))
		if p["in"] == "query" && p["name"] == name {
			return true
		}
	}
	return false
}

// responseSchema is the JSON schema of op's answer with status code (nil
// for an answer that is not JSON), and whether the description lists it.
func (o *openAPI) responseSchema(op map[string]any, code int) (map[string]any, bool) {
	r, ok := op["responses"].(map[string]any)[strconv.Itoa(code)].(map[string]any)
	if !ok {
		return nil, false
	}
	j, ok := o.resolve(r)["content"].(map[string]any)["application/json"].(map[string]any)
	if !ok {
		return nil, true
	}
	return j["schema"].(map[string]any), true
}

// websocketMessage is the schema of the messages of op's websocket, for
// an op that answers 101.
func (o *openAPI) websocketMessage(op map[string]any) (map[string]any, bool) {
	r, ok := op["responses"].(map[string]any)["101"].(map[string]any)
	if !ok {
		return nil, false
	}
	m, ok := r["x-websocket-message"].(map[string]any)
	return m, ok
}

// checkEventMessages reads /1.0/events while an operation of the API
// snapshots web, and checks each event against schema, until both the
// operation's end and the snapshot's lifecycle event have come.
func checkEventMessages(t *testing.T, doc *openAPI, schema map[string]any, c *client.Client) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	st, err := c.Events(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	op, err := c.CreateSnapshot(ctx, "web", api.InstanceSnapshotsPost{Name: "s3"})
	if err != nil {
		t.Fatal(err)
	}
	ended, created := false, false
	for !ended || !created {
		select {
		case ev, ok := <-st.C:
			if !ok {
				t.Fatalf("GET /1.0/events: the stream ended: %v", st.Err())
			}
			var v any
			if err := roundTrip(ev, &v); err != nil {
				t.Fatal(err)
			}
			if err := doc.check(schema, v, "GET /1.0/events message"); err != nil {
				t.Errorf("an event breaks the description: %v", err)
			}
			line := eventLine(t, ev)
			ended = ended || line == "operation Success "+op.Description
			created = created || line == "lifecycle instance-snapshot-created "+api.Path("instances", "web")+"/snapshots/s3"
		case <-time.After(eventPatience):
			t.Fatalf("GET /1.0/events: no event after %v", eventPatience)
		}
	}
}

// requiredQuery is the query of the required query parameters of a path
// and its operation, with their examples.
func (o *openAPI) requiredQuery(item, op map[string]any) string {
	q := url.Values{}
	for _, p := range append(items(item["parameters"]), items(op["parameters"])...) {
		p := o.resolve(p.(map[string]any))
		if p["in"] == "query" && p["required"] == true {
			q.Set(p["name"].(string), fmt.Sprint(p["example"]))
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

// The server answers what doc/rest-api.yaml describes: each documented
// GET answers 200 on real objects (and with each recursion), a 404 where
// documented for a name that does not exist, and every other documented
// method a documented status; each answer carries the documented
// properties with the documented types.
func TestServeOpenAPI(t *testing.T) {
	doc := loadOpenAPI(t)
	e := bootEnv(t, "dir")
	e.launch("bb", "web")
	e.ok("snapshot", "create", "web", "s1")
	e.ok("volume", "create", "default", "v1")
	e.ok("volume", "snapshot", "create", "default", "v1", "s1")
	certDir := t.TempDir()
	if _, err := trust.KeyPair(filepath.Join(certDir, "c.crt"), filepath.Join(certDir, "c.key")); err != nil {
		t.Fatal(err)
	}
	e.ok("config", "trust", "add-certificate", "c1", filepath.Join(certDir, "c.crt"))
	s := e.serve()
	op, err := s.c.CreateSnapshot(context.Background(), "web", api.InstanceSnapshotsPost{Name: "s2"})
	if err == nil {
		err = op.Wait(context.Background())
	}
	if err != nil {
		t.Fatal(err)
	}
	must(t)(s.c.CreateBackup(context.Background(), "web", api.InstanceBackupsPost{Name: "b1"}))
	var nets []api.Network
	e.json(&nets, "network", "list")
	if len(nets) == 0 {
		t.Fatal("no network to describe")
	}
	real := map[string]string{"name": "web", "snapshot": "s1", "id": op.ID, "fingerprint": "bb", "pool": "default",
		"volume": "v1", "network": nets[0].Name, "profile": "default", "certificate": "c1", "backup": "b1", "alias": "bb"}
	hc := client.UnixHTTP(s.socket)
	call := func(method, path, body string) (int, any) {
		t.Helper()
		req, _ := http.NewRequest(strings.ToUpper(method), "http://silo"+path, strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Type") != "application/json" {
			return resp.StatusCode, nil
		}
		var v any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %v", method, path, resp.StatusCode, err)
		}
		return resp.StatusCode, v
	}
	expect := func(method, path string, op map[string]any, code int, body any) {
		t.Helper()
		schema, listed := doc.responseSchema(op, code)
		if !listed {
			t.Errorf("%s %s: %d, which the description does not list (answer %v)", method, path, code, body)
			return
		}
		if (schema == nil) != (body == nil) {
			t.Errorf("%s %s: %d answers JSON %v where the description says otherwise", method, path, code, body != nil)
			return
		}
		if err := doc.check(schema, body, strings.ToUpper(method)+" "+path); schema != nil && err != nil {
			t.Errorf("%d answer breaks the description: %v", code, err)
		}
	}
	paths := doc.doc["paths"].(map[string]any)
	checked := 0
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		fill := func(values map[string]string) string {
			return pathParam.ReplaceAllStringFunc(p, func(m string) string {
				v, ok := values[m[1:len(m)-1]]
				if !ok {
					t.Fatalf("%s: no value for %s", p, m)
				}
				return v
			})
		}
		bogus := map[string]string{}
		for k := range real {
			bogus[k] = "nope"
		}
		for method, op := range doc.operations(paths[p].(map[string]any)) {
			if method != "get" {
				// A name that does not exist: a documented answer, and
				// nothing changes.
				path := fill(bogus)
				code, body := call(method, path, "{}")
				expect(method, path, op, code, body)
				continue
			}
			path := fill(real) + doc.requiredQuery(paths[p].(map[string]any), op)
			if message, ok := doc.websocketMessage(op); ok {
				code, body := call(method, path, "")
				expect(method, path, op, code, body) // not asked to upgrade
				checkEventMessages(t, doc, message, s.c)
				checked++
				continue
			}
			code, body := call(method, path, "")
			if _, websocket := op["responses"].(map[string]any)["101"]; websocket {
				// Not a websocket request: a documented refusal.
				expect(method, path, op, code, body)
				continue
			}
			if code != http.StatusOK {
				t.Errorf("GET %s: %d %v", path, code, body)
			}
			expect(method, path, op, code, body)
			if doc.hasQuery(op, "recursion") {
				for _, r := range []string{"0", "1", "2"} {
					code, body := call(method, path+"?recursion="+r, "")
					expect(method, path+"?recursion="+r, op, code, body)
				}
			}
			if _, listed := doc.responseSchema(op, http.StatusNotFound); listed && pathParam.MatchString(p) {
				path := fill(bogus) + doc.requiredQuery(paths[p].(map[string]any), op)
				code, body := call(method, path, "")
				if code != http.StatusNotFound {
					t.Errorf("GET %s: %d, want 404", path, code)
				}
				expect(method, path, op, code, body)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Fatalf("only %d GETs described", checked)
	}
	if e.status("web").State != "running" {
		t.Fatal("the requests on names that do not exist touched web")
	}
}
