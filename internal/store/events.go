package store

import "encoding/binary"

// EventLogSize is how many events the log keeps: each new one pushes out
// the oldest, so the log never grows past it.
const EventLogSize = 1000

// AppendEvent adds an event, encoded by the caller, to the log, in the
// transaction that makes the change it tells of: a change and its event
// are written together or not at all. It returns the event's sequence
// number, one more than the last's.
func (t *Tx) AppendEvent(data []byte) (uint64, error) {
	b := t.tx.Bucket(bucketEvents)
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	if err := b.Put(seqKey(seq), data); err != nil {
		return 0, err
	}
	// Sequence numbers have no gaps (a rolled-back transaction takes
	// its number back), so the one that falls out is known.
	if seq > EventLogSize {
		return seq, b.Delete(seqKey(seq - EventLogSize))
	}
	return seq, nil
}

// EventsAfter calls fn with each event the log holds after sequence
// number after, oldest first. It returns the number of events after it
// that the log no longer holds: they were pushed out before being read.
func (t *Tx) EventsAfter(after uint64, fn func(seq uint64, data []byte) error) (missed uint64, err error) {
	c := t.tx.Bucket(bucketEvents).Cursor()
	k, v := c.Seek(seqKey(after + 1))
	if k != nil {
		if first := binary.BigEndian.Uint64(k); first > after+1 {
			missed = first - after - 1
		}
	}
	for ; k != nil; k, v = c.Next() {
		if err := fn(binary.BigEndian.Uint64(k), v); err != nil {
			return missed, err
		}
	}
	return missed, nil
}

// LastEvent is the sequence number of the last event logged, 0 if none.
func (t *Tx) LastEvent() uint64 { return t.tx.Bucket(bucketEvents).Sequence() }

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
