package groupidauth

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// MaxReplayMemory is the most memory, in bytes, that request bodies kept
// for 401 replays may hold at once, all groupid_auth handlers of the
// process together. A request whose body would need more stops being kept:
// it streams on unbuffered, is not replayed, and an upstream 401 to it goes
// to the client (the next request uses a fresh token). The memory is given
// back when each request ends.
const MaxReplayMemory = 64 << 20

// MaxReplayBodyLimit is the largest max_replay_body accepted: 16 MiB.
const MaxReplayBodyLimit = 16 << 20

// A single body kept for a replay must fit in the process-wide budget.
const _ = uint(MaxReplayMemory - MaxReplayBodyLimit)

// replayChunkSize is the unit in which a body is kept and charged to the
// budget: memory held for one request is the bytes received so far,
// rounded up to a chunk.
const replayChunkSize = 16 << 10

type replayChunk [replayChunkSize]byte

var chunkPool = sync.Pool{New: func() any { return new(replayChunk) }}

// replayMemoryLimit is MaxReplayMemory; a variable so that tests can lower it.
var replayMemoryLimit int64 = MaxReplayMemory

// replayMemoryHeld is the memory, in bytes, in chunks now held for replays.
var replayMemoryHeld atomic.Int64

// reserveChunk charges one chunk to the process-wide budget, or reports
// that it is exhausted. The budget is never exceeded, not even briefly.
func reserveChunk() bool {
	for {
		held := replayMemoryHeld.Load()
		if held+replayChunkSize > replayMemoryLimit {
			return false
		}
		if replayMemoryHeld.CompareAndSwap(held, held+replayChunkSize) {
			return true
		}
	}
}

// errReplayBodyGone is what a reader of a request body gets once it no
// longer owns it: the transport of an answer that was held back for a
// replay, or anyone after the handler returned.
var errReplayBodyGone = errors.New("groupid_auth: request body handed to a replay or released")

// bodyState is the life of a recorded body; transitions happen under
// replayBody.mu.
type bodyState uint8

const (
	recording bodyState = iota // first pass, every byte read so far is kept
	streaming                  // first pass, nothing kept: not replayable
	held                       // a 401 was held back; the first pass is over
	replaying                  // the replay reads the kept bytes, then the rest
	released                   // the handler is done
)

// replayBody keeps a request body as the upstream reads it, so that the
// request can be sent again after a 401: it copies each read into pooled
// chunks charged to the process-wide budget, up to max bytes. Memory grows
// with the bytes received, never with the announced length. Past max, or
// when the budget is exhausted, it drops what it kept and the body streams
// on unkept.
//
// It is the first pass's body itself; the replay reads through a
// replayReader. Neither closes the original body: the transport may close
// what it was given, but the original is needed for the replay, so finish
// closes it when the handler is done.
//
// A transport may still read or close the body it was given after its
// RoundTrip returned (it writes the body from another goroutine), so every
// method locks mu, which is held across reads of src: reads of the
// original are serialized, and a state change waits for a read under way,
// whose bytes are kept before anyone decides on a replay.
type replayBody struct {
	mu     sync.Mutex
	src    io.ReadCloser
	max    int64
	state  bodyState
	n      int64          // bytes kept, in chunks[0:ceil(n/chunk)]
	pos    int64          // the replay's read position in the kept bytes
	err    error          // the error src returned, io.EOF at the end
	chunks []*replayChunk // each charged to the budget
	inline [4]*replayChunk
}

// recordBody decides how r's body is kept for a replay and reports whether
// the request may be replayed after a 401. A request without a body (the
// length and transfer encoding tell) costs nothing and is replayable; a
// body announced larger than max is not replayable and is passed on as it
// is. Otherwise r.Body is replaced by a recording replayBody, which the
// caller must end (see end).
func recordBody(r *http.Request, max int64) (*replayBody, bool) {
	if r.Body == nil || r.Body == http.NoBody || (r.ContentLength == 0 && len(r.TransferEncoding) == 0) {
		return nil, true
	}
	if max <= 0 || r.ContentLength > max {
		return nil, false
	}
	b := &replayBody{src: r.Body, max: max}
	b.chunks = b.inline[:0]
	r.Body = b
	return b, true
}

// Read reads the original body for the first pass, keeping what it gets.
func (b *replayBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != recording && b.state != streaming {
		return 0, errReplayBodyGone
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(p)
	if n > 0 && b.state == recording {
		b.keep(p[:n])
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// Close does not close the original body (see replayBody); finish does.
func (b *replayBody) Close() error { return nil }

// keep appends p to the kept bytes, or stops keeping when that would pass
// max or the budget. Call with b.mu held.
func (b *replayBody) keep(p []byte) {
	if b.n+int64(len(p)) > b.max {
		b.drop()
		return
	}
	for len(p) > 0 {
		i, off := int(b.n/replayChunkSize), int(b.n%replayChunkSize)
		if i == len(b.chunks) {
			if !reserveChunk() {
				b.drop()
				return
			}
			b.chunks = append(b.chunks, chunkPool.Get().(*replayChunk))
		}
		k := copy(b.chunks[i][off:], p)
		b.n += int64(k)
		p = p[k:]
	}
}

// drop gives the kept chunks back; the body streams on unkept. Call with
// b.mu held.
func (b *replayBody) drop() {
	b.freeChunks()
	if b.state == recording {
		b.state = streaming
	}
}

// freeChunks returns the chunks to the pool and their memory to the
// budget. Call with b.mu held.
func (b *replayBody) freeChunks() {
	for i, c := range b.chunks {
		chunkPool.Put(c)
		b.chunks[i] = nil
	}
	replayMemoryHeld.Add(-int64(len(b.chunks)) * replayChunkSize)
	b.chunks = b.inline[:0]
	b.n, b.pos = 0, 0
}

// hold ends the first pass when the upstream answered 401, and reports
// whether the request can be replayed: every byte read from the original
// so far is kept. A read under way is waited for. A request without a
// body (nil) can always be replayed.
func (b *replayBody) hold() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != recording {
		return false
	}
	b.state = held
	return true
}

// replay returns the body for the replay after hold: the kept bytes, then
// what the first pass did not read of the original.
func (b *replayBody) replay() io.ReadCloser {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state, b.pos = replaying, 0
	return replayReader{b}
}

// end ends the body's part in the round trip. On the first pass (the
// answer was not a 401 that is replayed) the kept chunks go back at once
// and the rest of the body, if the upstream still reads it, streams
// through unkept. After a hold or a replay it is finish. Safe on nil (no
// body).
func (b *replayBody) end() {
	if b == nil {
		return
	}
	b.mu.Lock()
	if b.state == recording || b.state == streaming {
		b.freeChunks()
		b.state = streaming
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	b.finish()
}

// finish closes the original body and gives the kept chunks back; any
// later read fails. It runs when the replay is over, whatever happened.
// The original is closed first, so that a read that a transport still has
// under way is unblocked rather than waited for. Safe on nil (no body).
func (b *replayBody) finish() {
	if b == nil {
		return
	}
	_ = b.src.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.freeChunks()
	b.state = released
}

// replayReader is the body of the replay. A single pointer: putting it in
// an interface does not allocate.
type replayReader struct{ b *replayBody }

// Read returns the kept bytes, then reads the rest of the original.
func (rr replayReader) Read(p []byte) (int, error) {
	b := rr.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != replaying {
		return 0, errReplayBodyGone
	}
	if b.pos < b.n {
		i, off := int(b.pos/replayChunkSize), int(b.pos%replayChunkSize)
		end := min(int64(replayChunkSize), int64(off)+b.n-b.pos)
		k := copy(p, b.chunks[i][off:end])
		b.pos += int64(k)
		return k, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(p)
	if err != nil {
		b.err = err
	}
	return n, err
}

// Close does not close the original body; finish does.
func (replayReader) Close() error { return nil }
