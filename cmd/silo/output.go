package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/errkind"
)

var formatFlag = &cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"}

// output prints v as JSON for programs, or as a table for people.
func output(c *cli.Context, v any, header []string, rows [][]string) error {
	switch c.String("format") {
	case "json":
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "table", "":
		printTable(os.Stdout, header, rows)
		return nil
	}
	return errkind.Wrap(errkind.Invalid, "unknown format %q: use table or json", c.String("format"))
}

func printTable(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if header != nil { // nil for lines of prose
		fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// fields prints "Key: value" lines, for info commands.
func fields(kv ...string) [][]string {
	var rows [][]string
	for i := 0; i+1 < len(kv); i += 2 {
		rows = append(rows, []string{kv[i] + ":", kv[i+1]})
	}
	return rows
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// humanSize writes bytes in binary units, as people read them.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
