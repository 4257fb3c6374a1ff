package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/silo-dev/silo/api"
)

// Every image command through h2:, each checked on h2 itself: info,
// export and import, alias add, list, rename and delete, delete and
// publish print what they print on h2, and fail with the exit codes they
// have there; a bad upload leaves nothing on h2.
func TestRemoteImages(t *testing.T) {
	h1, h2 := twoHostsServed(t)
	fp := h2.image("bb").Fingerprint

	// info: the same lines, and the same JSON, as on h2.
	if here, there := h2.ok("image", "info", "bb"), h1.ok("image", "info", "h2:bb"); here != there || !strings.Contains(there, fp) {
		t.Fatalf("image info h2:bb:\n%s\non h2:\n%s", there, here)
	}
	var img api.Image
	h1.apiJSON(&img, "image", "info", "h2:bb")
	if img.Fingerprint != fp || len(img.Aliases) != 1 || img.Aliases[0].Name != "bb" {
		t.Fatalf("image info h2:bb: %+v", img)
	}
	h1.fails(3, `image "nope" not found`, "image", "info", "h2:nope")
	h1.fails(2, "usage: silo image info", "image", "info", "h2:")

	// Aliases: add, list, rename, delete.
	h1.ok("image", "alias", "add", "h2:web-base", fp)
	if got := h2.image("web-base"); got.Fingerprint != fp {
		t.Fatalf("web-base on h2 names %s, not %s", got.Fingerprint, fp)
	}
	h1.fails(4, `alias "web-base" already names image `+fp[:12], "image", "alias", "add", "h2:web-base", fp)
	h1.fails(3, `image "nope" not found`, "image", "alias", "add", "h2:other", "nope")
	h1.fails(2, "alias", "image", "alias", "add", "h2:bad name", fp)
	var here, there []api.ImageAliasesEntry
	h1.apiJSON(&there, "image", "alias", "list", "h2:")
	h2.apiJSON(&here, "image", "alias", "list")
	want := []api.ImageAliasesEntry{{Name: "bb", Target: fp, Type: "container"}, {Name: "web-base", Target: fp, Type: "container"}}
	if !slices.Equal(there, want) || !slices.Equal(here, want) {
		t.Fatalf("image alias list h2: %+v; on h2: %+v", there, here)
	}
	if mine, theirs := h1.ok("image", "alias", "list", "h2:"), h2.ok("image", "alias", "list"); mine != theirs || !strings.Contains(mine, "web-base") {
		t.Fatalf("image alias list h2::\n%s\non h2:\n%s", mine, theirs)
	}
	if out := h1.ok("image", "alias", "list"); strings.Contains(out, "web-base") {
		t.Fatalf("h1's own aliases show h2's:\n%s", out)
	}
	h1.ok("image", "alias", "rename", "h2:web-base", "web2")
	h2.fails(3, `image "web-base" not found`, "image", "info", "web-base")
	if got := h2.image("web2"); got.Fingerprint != fp {
		t.Fatalf("web2 on h2 after a rename through h2: names %s", got.Fingerprint)
	}
	h1.fails(4, `alias "bb" already names image`, "image", "alias", "rename", "h2:web2", "bb")
	h1.fails(3, `alias "web-base" not found`, "image", "alias", "rename", "h2:web-base", "web3")
	h1.ok("image", "alias", "delete", "h2:web2")
	h2.fails(3, `image "web2" not found`, "image", "info", "web2")
	if h2.image(fp).Fingerprint != fp {
		t.Fatal("the alias's delete took the image")
	}
	h1.fails(3, `alias "web2" not found`, "image", "alias", "delete", "h2:web2")

	// export: the bytes that h2 exports; a missing image leaves no file.
	dir := t.TempDir()
	mine, theirs := filepath.Join(dir, "mine.tar.zst"), filepath.Join(dir, "theirs.tar.zst")
	if out := h1.ok("image", "export", "h2:bb", "-o", mine); !strings.HasPrefix(out, "Image bb exported to "+mine+" (") {
		t.Fatalf("image export h2:bb says %q", out)
	}
	h2.ok("image", "export", "bb", "-o", theirs)
	if a, b := readFile(t, mine), readFile(t, theirs); len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("image export h2:bb: %d bytes, unlike h2's own export (%d bytes)", len(a), len(b))
	}
	h1.fails(3, `image "nope" not found`, "image", "export", "h2:nope", "-o", filepath.Join(dir, "nope"))
	h1.fails(2, "bad", "image", "export", "h2:bb", "-o", filepath.Join(dir, "x"), "--compression", "bad")
	if names := dirNames(t, dir); !slices.Equal(names, []string{"mine.tar.zst", "theirs.tar.zst"}) {
		t.Fatalf("failed exports left %v", names)
	}

	// import: FILE h2: as lxc takes it; the same file twice; bad uploads.
	gz := filepath.Join(dir, "bb.tar.gz")
	h1.ok("image", "export", "h2:bb", "-o", gz, "--compression", "gzip")
	files := dirNames(t, filepath.Join(h2.state, "images"))
	if out := h1.ok("image", "import", gz, "h2:", "--alias", "gz"); !strings.HasPrefix(out, "Image imported: ") || !strings.Contains(out, "unified, gzip") {
		t.Fatalf("image import FILE h2: says %q", out)
	}
	gzImg := h2.image("gz")
	if gzImg.Compression != "gzip" || gzImg.Fingerprint == fp {
		t.Fatalf("gz on h2: %+v", gzImg)
	}
	if out := h1.ok("image", "import", gz, "h2:"); out != "Image "+gzImg.Fingerprint[:12]+" was already imported: nothing to do\n" {
		t.Fatalf("a second import through h2: says %q", out)
	}
	h1.fails(4, `alias "gz" already names image`, "image", "import", gz, "h2:", "--alias", "gz")
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	h1.fails(2, "import image", "image", "import", junk, "h2:", "--alias", "junk")
	h1.fails(2, "fingerprint mismatch", "image", "import", mine, "h2:", "--fingerprint", strings.Repeat("0", 64))
	h1.fails(2, "split image", "image", "import", junk, gz, "h2:")
	h1.fails(3, "image file", "image", "import", filepath.Join(dir, "absent"), "h2:")
	h2.fails(3, `image "junk" not found`, "image", "info", "junk")
	h1.ok("image", "alias", "add", "h2:junk", fp) // the failed import holds the name no more
	h1.ok("image", "alias", "delete", "h2:junk")
	if after := dirNames(t, filepath.Join(h2.state, "images")); len(after) != len(files)+1 {
		t.Fatalf("h2's image store: %v before the imports, %v after one good one and bad ones", files, after)
	}
	var imgs []api.Image
	h1.apiJSON(&imgs, "image", "list")
	if len(imgs) != 0 {
		t.Fatalf("imports through h2: landed here: %+v", imgs)
	}

	// delete: refused while an instance uses the image.
	if out := h1.ok("image", "delete", "h2:gz"); out != "Image gz deleted\n" {
		t.Fatalf("image delete h2:gz says %q", out)
	}
	h2.fails(3, `image "gz" not found`, "image", "info", "gz")
	h1.fails(3, `image "gz" not found`, "image", "delete", "h2:gz")
	h2.ok(append([]string{"create", "bb", "web"}, h2.poolArgs()...)...)
	h1.fails(5, "in use by 1 instance(s): [web]", "image", "delete", "h2:bb")
	h2.image("bb")

	// publish: of the instance, and of a snapshot, on h2.
	out := h1.ok("publish", "h2:web", "--alias", "img", "--property", "description=web")
	pub := h2.image("img")
	if !strings.HasPrefix(out, "Image published: "+pub.Fingerprint[:12]+" (") || pub.Properties["description"] != "web" {
		t.Fatalf("publish h2:web says %q; on h2: %+v", out, pub)
	}
	h2.ok("snapshot", "create", "web", "s1")
	h1.ok("publish", "h2:web/s1", "--alias", "img-s1", "--compression", "none")
	if got := h2.image("img-s1"); got.Compression != "none" {
		t.Fatalf("the snapshot's image on h2: %+v", got)
	}
	h2.apiJSON(&imgs, "image", "list")
	count := len(imgs)
	h1.fails(4, `alias "img" already names image`, "publish", "h2:web", "--alias", "img")
	h1.fails(3, `instance "nope" not found`, "publish", "h2:nope", "--alias", "x")
	h1.fails(3, "snapshot", "publish", "h2:web/nope", "--alias", "x")
	h1.fails(2, "compression", "publish", "h2:web", "--compression", "lzma")
	h2.apiJSON(&imgs, "image", "list")
	if len(imgs) != count {
		t.Fatalf("failed publishes left images on h2: %d, then %d", count, len(imgs))
	}
	h2.ok("delete", "web")
}

// twoHostsServed is twoHosts with h2 serving, and h1 its client.
func twoHostsServed(t *testing.T) (h1, h2 *env) {
	h1, h2 = newEnv(t, "dir"), bootEnv(t, "dir")
	servedPair(t, h1, h2)
	return h1, h2
}

// image is what silo image info says of ref on e.
func (e *env) image(ref string) api.Image {
	e.t.Helper()
	var img api.Image
	e.apiJSON(&img, "image", "info", ref)
	return img
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dirNames lists dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
