package groupidauth

import (
	"bytes"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestRecordBody: whatever is kept, the upstream reads the whole body; a
// body within max can be replayed byte for byte after the upstream read
// it all, across chunk boundaries; a larger one cannot, and gives its
// memory back at once.
func TestRecordBody(t *testing.T) {
	const max = 3*replayChunkSize + 5
	cases := []struct {
		name       string
		size       int
		length     int64 // -1: unknown (chunked)
		armed      bool
		replayable bool
	}{
		{"empty, known length", 0, 0, true, true},
		{"small, known length", 10, 10, true, true},
		{"one chunk", replayChunkSize, replayChunkSize, true, true},
		{"one chunk and a byte", replayChunkSize + 1, replayChunkSize + 1, true, true},
		{"exactly max", max, max, true, true},
		{"over max, known length", max + 1, max + 1, false, false},
		{"small, chunked", 10, -1, true, true},
		{"exactly max, chunked", max, -1, true, true},
		{"over max, chunked", max + 1, -1, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := pattern(tc.size)
			orig := io.NopCloser(bytes.NewReader(want))
			r := httptest.NewRequest("POST", "/", orig)
			r.ContentLength = tc.length
			if tc.length < 0 {
				r.TransferEncoding = []string{"chunked"}
			}
			b, armed := recordBody(r, max)
			if b != nil {
				defer b.finish() // finish may run twice
			}
			if armed != tc.armed {
				t.Fatalf("armed %v", armed)
			}
			// The upstream reads in odd sizes, as a transport may.
			got, err := io.ReadAll(io.LimitReader(oddReader{r.Body}, 1<<30))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("forwarded %d bytes (err %v), want %d", len(got), err, len(want))
			}
			if b == nil {
				if tc.size > 0 && tc.armed {
					t.Fatal("a body was not recorded")
				}
				return
			}
			if b.hold() != tc.replayable {
				t.Fatalf("replayable %v", !tc.replayable)
			}
			if held := replayMemoryHeld.Load(); held > int64(roundUpChunk(tc.size)) || (!tc.replayable && held != 0) {
				t.Fatalf("%d bytes held for a %d-byte body (replayable %v)", held, tc.size, tc.replayable)
			}
			if tc.replayable {
				again, err := io.ReadAll(oddReader{b.replay()})
				if err != nil || !bytes.Equal(again, want) {
					t.Fatalf("replayed %d bytes (err %v), want %d", len(again), err, len(want))
				}
			}
			b.finish()
			if held := replayMemoryHeld.Load(); held != 0 {
				t.Fatalf("%d bytes still held after finish", held)
			}
		})
	}
}

// pattern is n bytes that differ from one position to the next, so a
// misplaced or repeated piece shows.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i/251)
	}
	return p
}

func roundUpChunk(n int) int {
	return (n + replayChunkSize - 1) / replayChunkSize * replayChunkSize
}

// oddReader reads in sizes 1, 1000, 5000, 40000, 1, ... regardless of the
// caller's buffer, as a transport's writes may.
type oddReader struct{ r io.Reader }

var oddSizes = [...]int{1, 1000, 5000, 40000, 3}

// TestMaxReplayBodyBound: max_replay_body is at most 16 MiB, which fits in
// the process-wide budget, in JSON and in the Caddyfile.
func TestMaxReplayBodyBound(t *testing.T) {
	if MaxReplayBodyLimit > MaxReplayMemory || MaxReplayBodyLimit != 16<<20 {
		t.Fatalf("MaxReplayBodyLimit %d, MaxReplayMemory %d", MaxReplayBodyLimit, MaxReplayMemory)
	}
	for _, tc := range []struct {
		size int64
		err  string
	}{
		{MaxReplayBodyLimit, ""},
		{MaxReplayBodyLimit + 1, "max_replay_body: must be at most 16MiB"},
		{1 << 40, "max_replay_body: must be at most 16MiB"},
	} {
		h := simHandler("http://127.0.0.1:1/token")
		h.MaxReplayBody = new(tc.size)
		err := h.validate()
		if (tc.err == "" && err != nil) || (tc.err != "" && (err == nil || err.Error() != tc.err)) {
			t.Errorf("max_replay_body %d: %v, want %q", tc.size, err, tc.err)
		}
	}
	for in, want := range map[string]string{
		"16MiB":    "",
		"16777217": "max_replay_body: must be at most 16MiB",
		"1TiB":     "max_replay_body: must be at most 16MiB",
	} {
		h := new(Handler)
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("groupid_auth {\n max_replay_body " + in + "\n}"))
		if (want == "" && err != nil) || (want != "" && (err == nil || !strings.Contains(err.Error(), want))) {
			t.Errorf("max_replay_body %s: %v, want %q", in, err, want)
		}
	}
}

func (o oddReader) Read(p []byte) (int, error) {
	n := oddSizes[len(p)%len(oddSizes)]
	return o.r.Read(p[:min(len(p), n)])
}
