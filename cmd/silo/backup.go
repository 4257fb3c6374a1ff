package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/progress"
)

var compressionFlag = &cli.StringFlag{Name: "compression", Value: "zstd", Usage: "zstd, zstd-fast, gzip, xz or none"}

func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "file to write (- for stdout); required"}
}

func backupCommands() []*cli.Command {
	return []*cli.Command{
		publishCommand(),
		{Name: "export", Usage: "write an instance, with its snapshots, as a backup file", ArgsUsage: "[REMOTE:]NAME", Flags: []cli.Flag{
			outputFlag(), compressionFlag,
			&cli.BoolFlag{Name: "instance-only", Usage: "leave the snapshots out"},
			&cli.BoolFlag{Name: "optimized", Usage: "the storage driver's own streams: faster, but only a pool of the same driver can import them"},
		}, Action: onRemote(0, exportInstance, exportRemote)},
		{Name: "import", Usage: "make an instance from a backup file (- for stdin)", ArgsUsage: "FILE [[REMOTE:]NAME]", Flags: []cli.Flag{
			&cli.StringFlag{Name: "pool", Aliases: []string{"p"}, Usage: "storage pool (default: the pool named default)"},
			keepAddressesFlag,
		}, Action: onRemote(1, importInstance, importRemote)},
		{Name: "backup", Usage: "the backups a server keeps of an instance (made through its API)", Subcommands: []*cli.Command{
			{Name: "list", Aliases: []string{"ls"}, Usage: "list an instance's backups", ArgsUsage: "[REMOTE:]NAME", Flags: []cli.Flag{formatFlag},
				Action: onRemote(0, backupList, backupListRemote)},
		}},
	}
}

func exportInstance(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	opts := engine.ExportOptions{InstanceOnly: c.Bool("instance-only"), Optimized: c.Bool("optimized"), Compression: c.String("compression")}
	return writeOutput(c.String("output"), "Instance "+a[0], func(w io.Writer) error {
		if bar := progress.Start(os.Stderr, "export "+a[0]); bar != nil {
			defer bar.Finish()
			opts.Progress = bar
		}
		return e.Export(c.Context, a[0], w, opts)
	})
}

// exportRemote downloads a remote instance's backup stream, as the
// remote's GET /1.0/instances/NAME/export writes it while it reads the
// instance: no copy is staged on the remote.
func exportRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 1, 1)
	if err != nil {
		return err
	}
	opts := client.ExportOptions{InstanceOnly: c.Bool("instance-only"), Optimized: c.Bool("optimized"), Compression: c.String("compression")}
	return writeOutput(c.String("output"), "Instance "+c.Args().First(), func(w io.Writer) error {
		rc, err := cl.ExportInstance(c.Context, a[0], opts)
		if err != nil {
			return err
		}
		defer rc.Close()
		var r io.Reader = rc
		if bar := progress.Start(os.Stderr, "export "+c.Args().First()); bar != nil {
			defer bar.Finish()
			r = bar.Reader(rc)
		}
		_, err = io.Copy(w, r)
		return err
	})
}

func backupList(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	backups, err := e.Backups(c.Context, a[0])
	if err != nil {
		return err
	}
	return backupTable(c, backups)
}

func backupListRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 1, 1)
	if err != nil {
		return err
	}
	backups, err := cl.Backups(c.Context, a[0])
	if err != nil {
		return err
	}
	return backupTable(c, backups)
}

// backupTable prints backups with the columns of lxc info's.
func backupTable(c *cli.Context, backups []api.InstanceBackup) error {
	yes := map[bool]string{true: "YES", false: "NO"}
	var rows [][]string
	for _, b := range backups {
		rows = append(rows, []string{b.Name, when(b.CreatedAt), when(b.ExpiresAt), yes[b.InstanceOnly], yes[b.OptimizedStorage],
			b.CompressionAlgorithm, humanSize(b.Size)})
	}
	return output(c, backups, []string{"NAME", "TAKEN AT", "EXPIRES AT", "INSTANCE ONLY", "OPTIMIZED STORAGE", "COMPRESSION", "SIZE"}, rows)
}

// writeOutput runs write on the file path, or on stdout for "-". A file
// appears only whole: it is written under a temporary name and renamed
// when write succeeds; then what it holds is said.
func writeOutput(path, what string, write func(io.Writer) error) error {
	if path == "" {
		return errkind.Wrap(errkind.Invalid, "give -o FILE, or -o - for stdout")
	}
	if path == "-" {
		if term.IsTerminal(int(os.Stdout.Fd())) {
			return errkind.Wrap(errkind.Invalid, "refusing to write a binary stream to a terminal: give -o FILE, or pipe the output")
		}
		bw := bufio.NewWriterSize(os.Stdout, 1<<20)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	}
	if _, err := os.Stat(path); err == nil {
		return errkind.Wrap(errkind.AlreadyExists, "%s already exists", path)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".silo-tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		// On disk before its name says it is whole, crash or not.
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if st, err := os.Stat(path); err == nil {
		fmt.Printf("%s exported to %s (%s)\n", what, path, humanSize(st.Size()))
	}
	return nil
}

// openInput opens the file (what: "image file"...) at path, or stdin for
// "-", with a progress bar on a terminal; the bar knows the total when
// path is a regular file.
func openInput(path, what string) (io.Reader, func(), error) {
	f := os.Stdin
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", what, errkind.FromErrno(err))
		}
	}
	closeAll := func() {
		if f != os.Stdin {
			f.Close()
		}
	}
	bar := progress.Start(os.Stderr, "import")
	if bar == nil {
		return f, closeAll, nil
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		bar.Expect(st.Size())
	}
	return bar.Reader(f), sync.OnceFunc(func() { bar.Finish(); closeAll() }), nil
}

func importInstance(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 2)
	if err != nil {
		return err
	}
	r, done, err := openInput(a[0], "backup file")
	if err != nil {
		return err
	}
	inst, err := e.Import(c.Context, r, a[1], c.String("pool"), c.Bool(keepAddressesFlag.Name))
	done()
	if err != nil {
		return err
	}
	return imported(inst.Name, inst.Pool, len(inst.Snapshots))
}

// importRemote uploads a backup file to a remote (silo import f h2:web,
// or h2: for the backup's name), which applies it as it arrives: a
// file the remote cannot read leaves nothing there.
func importRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 1, 2)
	if err != nil {
		return err
	}
	r, done, err := openInput(a[0], "backup file")
	if err != nil {
		return err
	}
	inst, err := cl.ImportInstance(c.Context, r, client.ImportOptions{Name: a[1], Pool: c.String("pool"),
		KeepAddresses: c.Bool(keepAddressesFlag.Name)})
	done()
	if err != nil {
		return err
	}
	return imported(inst.Name, inst.ExpandedDevices[api.RootDevice]["pool"], len(inst.Snapshots))
}

func imported(name, pool string, snaps int) error {
	fmt.Printf("Instance %s imported on pool %s, with %d snapshot(s)\n", name, pool, snaps)
	return nil
}
