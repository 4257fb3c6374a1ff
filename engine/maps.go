package engine

import "github.com/silo-dev/silo/internal/store"

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// listAPI reads every record that records lists and shows each as
// programs see it: an empty list, never null, when there is none.
func listAPI[R, A any](e *Engine, records func(*store.Tx) ([]*R, error), show func(*store.Tx, *R) (*A, error)) ([]*A, error) {
	out := []*A{}
	err := e.store.View(func(tx *store.Tx) error {
		recs, err := records(tx)
		if err != nil {
			return err
		}
		for _, r := range recs {
			a, err := show(tx, r)
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}
