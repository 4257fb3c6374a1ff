package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The alias routes and the image routes beside them each answer their
// own requests; a publish with a bad source is refused before anything
// starts, each with a clear error.
func TestImageRoutes(t *testing.T) {
	s := newServer(t, Config{Trusted: func(*http.Request) bool { return true }})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/1.0/images/aliases", "", 200, `"metadata":[]`},
		{"GET", "/1.0/images/aliases/debian%2F12", "", 404, `alias \"debian/12\" not found`},
		{"GET", "/1.0/images/aliases/export", "", 404, `alias \"export\" not found`},
		{"GET", "/1.0/images/aliases/a/b", "", 404, "no such path"},
		{"GET", "/1.0/images/nope/export", "", 404, `image \"nope\" not found`},
		{"GET", "/1.0/images/nope", "", 404, `image \"nope\" not found`},
		{"PUT", "/1.0/images/aliases/x", "{}", 405, "method not allowed"},
		{"PUT", "/1.0/images/aliases", "{}", 405, "method not allowed"},
		{"PATCH", "/1.0/images/nope", "{}", 405, "method not allowed"},
		{"OPTIONS", "/1.0/images/aliases/x", "", 405, "method not allowed"},
		{"HEAD", "/1.0/images/nope", "", 404, ""},
		{"POST", "/1.0/images/aliases", `{"name": "x"}`, 400, "name and target"},
		{"POST", "/1.0/images/aliases", `{"name": "x", "target": "nope"}`, 404, `image \"nope\" not found`},
		{"POST", "/1.0/images/aliases/x", `{"name": ""}`, 400, "new name"},
		{"POST", "/1.0/images/aliases/x", `{"name": "y"}`, 404, `alias \"x\" not found`},
		{"DELETE", "/1.0/images/aliases/x", "", 404, `alias \"x\" not found`},
		{"POST", "/1.0/images", `{"source": {"type": "url", "name": "web"}}`, 400, `source.type \"url\"`},
		{"POST", "/1.0/images", `{"source": {"type": "instance", "name": "web/s1"}}`, 400, "INSTANCE/SNAPSHOT for a snapshot"},
		{"POST", "/1.0/images", `{"source": {"type": "snapshot", "name": "web"}}`, 400, "INSTANCE/SNAPSHOT for a snapshot"},
		{"POST", "/1.0/images", `{"source": {"type": "instance", "name": ""}}`, 400, "source.name"},
		{"POST", "/1.0/images", `{"source": {"type": "instance", "name": "web"}, "public": true}`, 400, "public"},
	} {
		req, _ := http.NewRequest(c.method, ts.URL+c.path, strings.NewReader(c.body))
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(b), c.want) {
			t.Errorf("%s %s %s: %d %s, want %d and %q", c.method, c.path, c.body, resp.StatusCode, b, c.code, c.want)
		}
	}
}
