package engine

import (
	"reflect"
	"testing"

	"github.com/silo-dev/silo/image"
)

// Image metadata goes into the store's records and comes back whole.
func TestMetadataRecordRoundTrips(t *testing.T) {
	m := &image.Metadata{Architecture: "aarch64", CreationDate: 1700000000, ExpiryDate: 1800000000,
		Properties: map[string]string{"os": "debian"},
		Templates: map[string]*image.Template{"/etc/hosts": {When: []string{image.WhenCreate, image.WhenCopy},
			CreateOnly: true, Template: "hosts.tpl", Properties: map[string]string{"k": "v"}}}}
	if back := imageMetadata(metadataRecord(m)); !reflect.DeepEqual(back, m) {
		t.Fatalf("came back as %+v, not %+v", back, m)
	}
	if metadataRecord(nil) != nil || imageMetadata(nil) != nil {
		t.Fatal("no metadata became some")
	}
}
