package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/api")

var ephemeral = true

var (
	created = time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	started = time.Date(2025, 3, 2, 10, 0, 0, 500_000_000, time.UTC)
)

// shapes holds a value of each type with every field set, by golden file.
var shapes = map[string]any{
	"instance.json": &Instance{
		Name: "web", Type: TypeContainer, Status: Running.String(), StatusCode: Running,
		Architecture: "x86_64", Image: "571ceb70d80c2e9f3b8a1fd8c46a7d4b60e8b1e2b8c0a8a6b1f07b7d0e3c1f2a",
		Config:         map[string]string{"limits.memory": "256MiB"},
		Devices:        map[string]map[string]string{"eth0": {"type": "nic", "network": "silobr0", "ipv4.address": "10.87.1.10"}},
		Profiles:       []string{"default"},
		ExpandedConfig: map[string]string{"limits.memory": "256MiB", "volatile.eth0.hwaddr": "00:16:3e:5a:01:02"},
		ExpandedDevices: map[string]map[string]string{RootDevice: {"type": "disk", "path": "/", "pool": "default"},
			"eth0": {"type": "nic", "network": "silobr0", "ipv4.address": "10.87.1.10"}},
		Ephemeral: true, CreatedAt: created,
		State: &InstanceState{Status: Running.String(), StatusCode: Running, Pid: 4242, Processes: 7,
			Memory: InstanceStateMemory{Usage: 655360}, Disk: map[string]InstanceStateDisk{RootDevice: {Usage: 1 << 20, Total: 10 << 30}},
			Network: map[string]InstanceStateNetwork{"eth0": {
				Addresses: []InstanceStateNetworkAddress{{Family: "inet", Address: "10.87.1.10", Netmask: "24", Scope: "global"}},
				Counters:  InstanceStateNetworkCounters{BytesReceived: 1200, BytesSent: 800},
				Hwaddr:    "00:16:3e:5a:01:02", HostName: "veth5a0102", State: "up", Type: "broadcast"}},
			StartedAt: started},
		Snapshots:  []InstanceSnapshot{{Name: "snap0", CreatedAt: created, ExpiresAt: started, UUID: "8f1a7c3e-4b2d-4e6f-9a0b-1c2d3e4f5a6b", StreamID: "d3c1e9a0-5b7f-0b4e-8a2d-61f0c3b7e9a4"}},
		Privileged: true,
		Idmap:      []IdmapEntry{{IsUID: true, IsGID: true, HostID: 1000000, NSID: 1, Range: 65536}},
	},
	"snapshot.json": &InstanceSnapshot{Name: "snap0", CreatedAt: created, ExpiresAt: started, UUID: "8f1a7c3e-4b2d-4e6f-9a0b-1c2d3e4f5a6b", StreamID: "d3c1e9a0-5b7f-0b4e-8a2d-61f0c3b7e9a4"},
	"profile.json": &Profile{Name: "web", Description: "web servers", Config: map[string]string{"limits.cpu": "1"},
		Devices: map[string]map[string]string{"http": {"type": "proxy", "listen": "tcp:0.0.0.0:8080", "connect": "tcp:127.0.0.1:80"}},
		UsedBy:  []string{Path("instances", "web")}},
	"network.json": &Network{Name: "silobr0", Type: "bridge", Managed: true,
		Config: map[string]string{"ipv4.address": "10.87.1.1/24", "ipv4.nat": "true"}, Status: "Created",
		UsedBy: []string{Path("instances", "web"), Path("profiles", "default")}, CreatedAt: created},
	"lease.json": &NetworkLease{Hostname: "web", Hwaddr: "00:16:3e:5a:01:02", Address: "10.87.1.10", Type: "static", Device: "eth0"},
	"pool.json": &StoragePool{Name: "fast", Driver: "btrfs", Config: map[string]string{"size": "20GiB"},
		Status: PoolCreated, UsedBy: []string{Path("instances", "web"), Path("images", "571ceb70d80c")}, CreatedAt: created},
	"volume.json": &StorageVolume{Name: "data", Pool: "fast", Type: VolumeTypeCustom, ContentType: ContentFilesystem,
		Description: "the database", Config: map[string]string{"size": "10GiB"},
		UsedBy: []string{Path("instances", "web"), Path("profiles", "db")}, CreatedAt: created,
		State:     &StorageVolumeState{Usage: StorageVolumeStateUsage{Used: 1 << 20, Total: 10 << 30}},
		Snapshots: []StorageVolumeSnapshot{{Name: "snap0", CreatedAt: created, ExpiresAt: started}}},
	"volume-snapshot.json": &StorageVolumeSnapshot{Name: "snap0", CreatedAt: created, ExpiresAt: started},
	"image.json": &Image{Fingerprint: "571ceb70d80c2e9f3b8a1fd8c46a7d4b60e8b1e2b8c0a8a6b1f07b7d0e3c1f2a",
		Aliases: []ImageAlias{{Name: "debian/12"}}, Type: TypeContainer, Architecture: "x86_64", Size: 1036165,
		Properties: map[string]string{"os": "debian", "release": "bookworm"}, CreatedAt: created, UploadedAt: started,
		Layout: "split", RootfsFormat: "squashfs", Compression: "xz", Templates: []string{"/etc/hostname"}},
	"image-alias.json":        &ImageAliasesEntry{Name: "debian/12", Target: "571ceb70d80c2e9f3b8a1fd8c46a7d4b60e8b1e2b8c0a8a6b1f07b7d0e3c1f2a", Type: TypeContainer},
	"image-aliases-post.json": &ImageAliasesPost{Name: "web-base", Target: "571ceb70d80c"},
	"image-alias-post.json":   &ImageAliasesEntryPost{Name: "web-base-old"},
	"images-post.json": &ImagesPost{Source: ImagesPostSource{Type: ImageSourceSnapshot, Name: "web/snap0"},
		Aliases: []ImageAlias{{Name: "web-base"}}, Properties: map[string]string{"description": "the web server"}, CompressionAlgorithm: "xz"},
	"certificate.json": &Certificate{Name: "laptop", Type: CertificateTypeClient, Certificate: "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
		Fingerprint: "9d2c1f0e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d", AddedAt: created},
	"certificate-add-token.json": &CertificateAddToken{ClientName: "laptop", Fingerprint: "9d2c1f0e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d",
		Addresses: []string{"192.0.2.2:8443"}, Secret: "5f1e...", ExpiresAt: started},
	"certificates-post.json": &CertificatesPost{Name: "laptop", Type: CertificateTypeClient, Certificate: "MIIB...", TrustToken: "eyJjbGllbnRfbmFtZSI6...",
		Password: "eyJjbGllbnRfbmFtZSI6...", Token: true, Restricted: true, Projects: []string{"default"}},
	"response.json": &Response{Type: ResponseAsync, Status: Running.String(), StatusCode: int(Running),
		Operation: Path("operations", "6916c8a6"), Error: "pool fast is full", ErrorCode: 507,
		Metadata: map[string]any{"id": "6916c8a6"}},
	"server.json": &Server{APIExtensions: []string{"instance_create_start"}, APIStatus: "stable", APIVersion: "1.0",
		Auth: "trusted", AuthMethods: []string{"tls"}, Public: true, Config: map[string]string{"core.https_address": "192.0.2.2:8443"},
		Environment: &ServerEnvironment{Architectures: []string{"x86_64"}, Kernel: "Linux", KernelArchitecture: "x86_64",
			KernelVersion: "6.18.0", Server: "silo", ServerName: "h1", ServerPid: 4242, Storage: []string{"btrfs", "dir", "zfs"}}},
	"instances-post.json": &InstancesPost{Name: "web", Source: InstanceSource{Type: "image", Alias: "debian/12", Fingerprint: "571ceb70d80c"},
		Profiles: []string{"default"}, Config: map[string]string{"limits.memory": "256MiB"},
		Devices: map[string]map[string]string{RootDevice: {"type": "disk", "path": "/", "pool": "fast"}}, Ephemeral: true, Start: true,
		Type: TypeContainer},
	"instance-put.json": &InstancePut{Config: map[string]string{"user.a": "1"}, Devices: map[string]map[string]string{"data": {"type": "disk", "source": "/srv", "path": "/srv"}},
		Profiles: []string{"default"}, Ephemeral: &ephemeral, Restore: "snap0"},
	"instance-post.json":           &InstancePost{Name: "www"},
	"instance-state-put.json":      &InstanceStatePut{Action: "stop", Timeout: 30, Force: true},
	"instance-snapshots-post.json": &InstanceSnapshotsPost{Name: "snap0", ExpiresAt: &started},
	"backup.json": &InstanceBackup{Name: "backup0", CreatedAt: created, ExpiresAt: started, InstanceOnly: true,
		OptimizedStorage: true, CompressionAlgorithm: "zstd", Size: 119 << 20},
	"instance-backups-post.json": &InstanceBackupsPost{Name: "backup0", ExpiresAt: started, InstanceOnly: true,
		OptimizedStorage: true, CompressionAlgorithm: "gzip"},
	"instance-backup-post.json": &InstanceBackupPost{Name: "before-upgrade"},
	"profiles-post.json": &ProfilesPost{Name: "web", Description: "web servers", Config: map[string]string{"limits.cpu": "1"},
		Devices: map[string]map[string]string{"eth0": {"type": "nic", "network": "silobr0"}}},
	"profile-post.json": &ProfilePost{Name: "www"},
	"profile-put.json": &ProfilePut{Description: "web servers", Config: map[string]string{"limits.cpu": "1"},
		Devices: map[string]map[string]string{"eth0": {"type": "nic", "network": "silobr0"}}},
	"volumes-post.json":          &StorageVolumesPost{Name: "data", Type: VolumeTypeCustom, Config: map[string]string{"size": "10GiB"}},
	"volume-put.json":            &StorageVolumePut{Description: "the database", Config: map[string]string{"size": "10GiB"}, Restore: "snap0"},
	"volume-post.json":           &StorageVolumePost{Name: "db"},
	"volume-snapshots-post.json": &StorageVolumeSnapshotsPost{Name: "snap0", ExpiresAt: &started},
	"network-put.json":           &NetworkPut{Config: map[string]string{"ipv4.nat": "false"}},
	"networks-post.json":         &NetworksPost{Name: "silobr1", Type: "bridge", Config: map[string]string{"ipv4.address": "auto"}},
	"operation.json": &Operation{ID: "6916c8a6", Class: ClassTask, Description: "create web", CreatedAt: created,
		Status: Failure.String(), StatusCode: Failure, Resources: map[string][]string{"instances": {Path("instances", "web")}},
		Metadata: map[string]any{"fds": map[string]any{"0": "4c1f", "control": "9e2a"}}, Err: "pool fast is full", ErrKind: "no-space"},
	"instance-exec-post.json": &InstanceExecPost{Command: []string{"sh", "-c", "stty size"}, Environment: map[string]string{"TERM": "xterm"},
		WaitForWS: true, Interactive: true, Width: 80, Height: 24, RecordOutput: true, User: 1000, Group: 1000, Cwd: "/srv"},
	"instance-exec-control.json": &InstanceExecControl{Command: ExecWindowResize, Args: map[string]string{"width": "100", "height": "30"},
		Signal: 15},
	"instance-console-post.json": &InstanceConsolePost{Width: 80, Height: 24, Type: ConsoleTypeConsole},
	"event.json": &Event{Type: EventTypeLifecycle, Timestamp: started, Location: LocationNone, Project: ProjectDefault,
		// As the golden file's indentation leaves it, to read back the same.
		Metadata: json.RawMessage("{\n    \"action\": \"instance-started\",\n    \"source\": \"/1.0/instances/web\",\n    \"name\": \"web\"\n  }")},
	"event-lifecycle.json": &EventLifecycle{Action: ActionInstanceRenamed, Source: Path("instances", "web"),
		Context: map[string]any{"old_name": "www"}, Name: "web"},
	"event-logging.json": &EventLogging{Message: "the pool went away behind silo's back; mounting it again", Level: "warning",
		Context: map[string]string{"pool": "fast"}},
}

// Each type marshals to its golden file, and the golden file reads back
// into it field for field: renaming, adding or dropping a field fails here
// until the golden file says so too (go test ./api -update rewrites them).
func TestShapes(t *testing.T) {
	for file, v := range shapes {
		t.Run(file, func(t *testing.T) {
			allSet(t, reflect.ValueOf(v).Elem(), reflect.TypeOf(v).Elem().Name())
			got, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("..", "testdata", "api", file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%T marshals to\n%s\nnot as %s says:\n%s", v, got, path, want)
			}
			back := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			dec := json.NewDecoder(bytes.NewReader(want))
			dec.DisallowUnknownFields()
			if err := dec.Decode(back); err != nil {
				t.Fatalf("%s does not read back: %v", path, err)
			}
			if !reflect.DeepEqual(back, v) {
				t.Errorf("%s reads back as %+v, not %+v", path, back, v)
			}
		})
	}
}

// allSet fails for a zero field of v, so that every field shows in the
// golden files, including those that are left out when empty.
func allSet(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		allSet(t, v.Elem(), path)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			return
		}
		for i := range v.NumField() {
			f := v.Field(i)
			name := path + "." + v.Type().Field(i).Name
			if f.IsZero() {
				t.Errorf("%s is not set: give it a value, so that the golden file shows it", name)
				continue
			}
			allSet(t, f, name)
		}
	case reflect.Slice:
		for i := range v.Len() {
			allSet(t, v.Index(i), path)
		}
	}
}

func TestPath(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"instances", "web"}:     "/1.0/instances/web",
		{"images", "debian/12"}:  "/1.0/images/debian%2F12",
		{"storage-pools", "a b"}: "/1.0/storage-pools/a%20b",
	} {
		if got := Path(in[0], in[1]); got != want {
			t.Errorf("Path(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}
