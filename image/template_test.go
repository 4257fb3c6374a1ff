package image

import (
	"errors"
	"testing"

	"github.com/silo-dev/silo/errkind"
)

func TestRender(t *testing.T) {
	vars := map[string]any{
		"container":  map[string]string{"name": "web", "ephemeral": "false"},
		"config":     map[string]string{"user.user-data": "#cloud-config"},
		"properties": map[string]string{"default": "fallback"},
		"trigger":    "create",
	}
	cases := map[string]string{
		"{{ container.name }}\n":                                                                    "web\n",
		"127.0.1.1\t{{ container.name }}":                                                           "127.0.1.1\tweb",
		"{{ config_get(\"user.user-data\", \"\") }}":                                                "#cloud-config",
		"{{ config_get(\"user.meta-data\", properties.default) }}":                                  "fallback",
		"{% if config_get(\"user.network-config\", \"\") == \"\" %}dhcp{% else %}custom{% endif %}": "dhcp",
		"{% if trigger == \"copy\" %}a{% elif trigger == \"create\" %}b{% else %}c{% endif %}":      "b",
		"{% if not container.missing and (trigger != 'x' or false) %}yes{% endif %}":                "yes",
		"{# a comment #}{{ nothing.here|default:\"dflt\" }} {x}":                                    "dflt {x}",
		"{% if container.name %}{% if config.none %}no{% else %}nested{% endif %}{% endif %}":       "nested",
	}
	for src, want := range cases {
		got, err := Render(src, vars)
		if err != nil || got != want {
			t.Errorf("Render(%q) = %q, %v; want %q", src, got, err, want)
		}
	}
	for _, bad := range []string{
		"{{ container.name ",
		"{% if x %}never closed",
		"{% for x in y %}{% endfor %}",
		"{% include \"/etc/shadow\" %}",
		"{{ container.name|safe }}",
		"{{ os.system(\"id\") }}",
		"{% endif %}",
	} {
		if _, err := Render(bad, vars); !errors.Is(err, errkind.Invalid) {
			t.Errorf("Render(%q): %v, want an Invalid error", bad, err)
		}
	}
}
