package api

import "time"

// Image is a root filesystem with its metadata, as imported, built or
// published (LXD's Image, less what silo does not have: public images,
// auto-update, expiry, profiles, last use).
type Image struct {
	// Fingerprint is the SHA-256 of the image's file (of both, metadata
	// then rootfs, for a split image), in hex.
	Fingerprint string `json:"fingerprint"`
	// Aliases are the image's other names.
	Aliases []ImageAlias `json:"aliases"`
	// Type is always "container".
	Type string `json:"type"`
	// Architecture is the one metadata.yaml names; absent for a plain
	// root filesystem tarball, which has none.
	Architecture string `json:"architecture,omitempty"`
	// Size is the bytes of the image's file(s) as imported.
	Size int64 `json:"size"`
	// Properties are metadata.yaml's (os, release, description...);
	// empty, never null, when it has none.
	Properties map[string]string `json:"properties"`
	// CreatedAt is when the image was made, as metadata.yaml says;
	// absent when there is no metadata.yaml.
	CreatedAt time.Time `json:"created_at,omitzero"`
	// UploadedAt is when the image came to this host.
	UploadedAt time.Time `json:"uploaded_at"`
	// Layout is how the image's files are laid out: rootfs (a plain
	// tarball), unified (LXD's one tarball) or split (LXD's metadata and
	// rootfs pair).
	Layout string `json:"layout"`
	// RootfsFormat is tar or squashfs: a split image's rootfs file.
	RootfsFormat string `json:"rootfs_format,omitempty"`
	// Compression is the compression of the image's (first) file: zstd,
	// gzip, xz, bzip2 or none.
	Compression string `json:"compression"`
	// Templates lists the paths that the image's templates render,
	// sorted; absent when it has none.
	Templates []string `json:"templates,omitempty"`
}

// ImageAlias is another name of an image.
type ImageAlias struct {
	// Name is the alias, as in debian/12.
	Name string `json:"name"`
}

// ImageAliasesEntry is an alias with the image it names, as
// /1.0/images/aliases serves it.
type ImageAliasesEntry struct {
	Name string `json:"name"`
	// Target is the fingerprint of the image the alias names.
	Target string `json:"target"`
	// Type is always "container".
	Type string `json:"type"`
}

// ImageAliasesPost gives image Target (a fingerprint, a unique prefix of
// one, or another alias) the alias Name.
type ImageAliasesPost struct {
	Name   string `json:"name"`
	Target string `json:"target"`
}

// ImageAliasesEntryPost renames an alias.
type ImageAliasesEntryPost struct {
	Name string `json:"name"`
}

// ImagesPost makes an image of an instance or of one of its snapshots:
// the JSON form of POST /1.0/images (a file uploaded is the other).
type ImagesPost struct {
	Source ImagesPostSource `json:"source"`
	// Aliases are the new image's names.
	Aliases []ImageAlias `json:"aliases,omitempty"`
	// Properties are added to the image's metadata.
	Properties map[string]string `json:"properties,omitempty"`
	// CompressionAlgorithm is zstd (the default), zstd-fast, gzip, xz
	// or none.
	CompressionAlgorithm string `json:"compression_algorithm,omitempty"`
}

// ImagesPostSource names what an image is made of.
type ImagesPostSource struct {
	// Type is instance, or snapshot for NAME/SNAPSHOT.
	Type string `json:"type"`
	Name string `json:"name"`
}

// Image source types of ImagesPostSource.
const (
	ImageSourceInstance = "instance"
	ImageSourceSnapshot = "snapshot"
)
