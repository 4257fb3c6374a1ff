package main

import (
	"fmt"
	"sort"
	"sync"
	"testing"
)

// 20 creates and 20 snapshots started at once, on an image with no base
// volume yet, all succeed; the records are exact and match the pool.
func TestConcurrentCommands(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
			e.ok(append([]string{"create", "tiny", "snapped"}, e.poolArgs()...)...)
			const n = 20
			var wg sync.WaitGroup
			results := make([]result, 2*n)
			for i := range n {
				wg.Go(func() {
					// Half on this pool, half on the default one, whose
					// base volume does not exist yet.
					args := []string{"create", "tiny", fmt.Sprintf("c%02d", i)}
					if i%2 == 0 {
						args = append(args, e.poolArgs()...)
					}
					results[i] = e.run(args...)
				})
				wg.Go(func() { results[n+i] = e.run("snapshot", "create", "snapped") })
			}
			wg.Wait()
			for i, r := range results {
				if r.code != 0 {
					t.Errorf("command %d: exit %d: %s", i, r.code, r.err)
				}
			}
			var insts []struct{ Name string }
			e.json(&insts, "list")
			var got, want []string
			for _, i := range insts {
				got = append(got, i.Name)
			}
			for i := range n {
				want = append(want, fmt.Sprintf("c%02d", i))
			}
			want = append(want, "snapped")
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("list gives %v, want %v", got, want)
			}
			var snaps []struct{ Name string }
			e.json(&snaps, "snapshot", "list", "snapped")
			names := []string{}
			for _, s := range snaps {
				names = append(names, s.Name)
			}
			sort.Strings(names)
			want = nil
			for i := range n {
				want = append(want, fmt.Sprintf("snap%d", i))
			}
			sort.Strings(want)
			if fmt.Sprint(names) != fmt.Sprint(want) {
				t.Fatalf("snapshots %v, want %v", names, want)
			}
			e.consistent()
		})
	}
}
