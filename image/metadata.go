package image

import (
	"runtime"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/silo-dev/silo/errkind"
)

// Metadata is an image's metadata.yaml, as LXD and Incus write it.
type Metadata struct {
	Architecture string               `yaml:"architecture" json:"architecture"`
	CreationDate int64                `yaml:"creation_date" json:"creation_date"`
	ExpiryDate   int64                `yaml:"expiry_date,omitempty" json:"expiry_date,omitempty"`
	Properties   map[string]string    `yaml:"properties,omitempty" json:"properties,omitempty"`
	Templates    map[string]*Template `yaml:"templates,omitempty" json:"templates,omitempty"`
}

// Template says when to render which template into a path of the root.
type Template struct {
	When       []string          `yaml:"when" json:"when"`
	CreateOnly bool              `yaml:"create_only,omitempty" json:"create_only,omitempty"`
	Template   string            `yaml:"template" json:"template"`
	Properties map[string]string `yaml:"properties,omitempty" json:"properties,omitempty"`
}

// Triggers of templates.
const (
	WhenCreate = "create"
	WhenCopy   = "copy"
	WhenStart  = "start"
)

// maxMetadata bounds metadata.yaml and each template, which are read whole.
const maxMetadata = 1 << 20

// ParseMetadata reads metadata.yaml, and refuses one LXD would refuse.
func ParseMetadata(b []byte) (*Metadata, error) {
	m := &Metadata{}
	if err := yaml.Unmarshal(b, m); err != nil {
		return nil, errkind.Wrap(errkind.Invalid, "metadata.yaml: %w", err)
	}
	if m.Architecture == "" {
		return nil, errkind.Wrap(errkind.Invalid, "metadata.yaml names no architecture")
	}
	for path, t := range m.Templates {
		if t == nil || t.Template == "" || len(path) == 0 || path[0] != '/' {
			return nil, errkind.Wrap(errkind.Invalid, "metadata.yaml: template for %q must name a template file and an absolute path", path)
		}
		for _, w := range t.When {
			if w != WhenCreate && w != WhenCopy && w != WhenStart {
				return nil, errkind.Wrap(errkind.Invalid, "metadata.yaml: template for %q: unknown trigger %q", path, w)
			}
		}
	}
	return m, nil
}

// Marshal writes m as metadata.yaml.
func (m *Metadata) Marshal() ([]byte, error) { return yaml.Marshal(m) }

// NewMetadata is the metadata of an image made on this host now.
func NewMetadata(properties map[string]string) *Metadata {
	return &Metadata{Architecture: Architecture(), CreationDate: time.Now().Unix(), Properties: properties}
}

// Architecture is this host's architecture as LXD names it.
func Architecture() string {
	names := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "arm": "armv7l",
		"ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
	if n, ok := names[runtime.GOARCH]; ok {
		return n
	}
	return runtime.GOARCH
}
