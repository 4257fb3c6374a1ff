package engine

import (
	"github.com/silo-dev/silo/image"
	"github.com/silo-dev/silo/internal/store"
)

// imageSpec names the files of img for the image package.
func imageSpec(img *store.Image) image.Spec {
	layout := img.Layout
	if layout == "" {
		layout = image.LayoutRootfs
	}
	return image.Spec{Layout: layout, File: img.File, Rootfs: img.Rootfs, RootfsFormat: img.RootfsFormat}
}

// metadataRecord is what the store keeps of an image's metadata.yaml.
func metadataRecord(m *image.Metadata) *store.ImageMetadata {
	if m == nil {
		return nil
	}
	t := convertAll(m.Templates, func(t image.Template) store.ImageTemplate { return store.ImageTemplate(t) })
	return &store.ImageMetadata{Architecture: m.Architecture, CreationDate: m.CreationDate, ExpiryDate: m.ExpiryDate, Properties: m.Properties, Templates: t}
}

// imageMetadata is the metadata.yaml that the store's record r keeps.
func imageMetadata(r *store.ImageMetadata) *image.Metadata {
	if r == nil {
		return nil
	}
	t := convertAll(r.Templates, func(t store.ImageTemplate) image.Template { return image.Template(t) })
	return &image.Metadata{Architecture: r.Architecture, CreationDate: r.CreationDate, ExpiryDate: r.ExpiryDate, Properties: r.Properties, Templates: t}
}

// convertAll converts every value of m with convert.
func convertAll[A, B any](m map[string]*A, convert func(A) B) map[string]*B {
	if m == nil {
		return nil
	}
	out := make(map[string]*B, len(m))
	for k, v := range m {
		b := convert(*v)
		out[k] = &b
	}
	return out
}
