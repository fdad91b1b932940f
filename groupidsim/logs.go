package groupidsim

import (
	"net/http"
	"strconv"
	"sync"
)

// logArchiveSize is the length of the simulated log download.
const logArchiveSize = 256 << 10

var logArchive = sync.OnceValue(func() []byte {
	b := make([]byte, logArchiveSize)
	// Every byte value once, in order, so 0x00, CR, LF and 0xff are all there.
	for i := 0; i < 256; i++ {
		b[i] = byte(i)
	}
	// Then a fixed xorshift sequence: deterministic, incompressible-looking.
	x := uint32(0x9e3779b9)
	for i := 256; i < len(b); i++ {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x >> 24)
	}
	// Sprinkle CRLF pairs and lone LFs, which careless text handling mangles.
	for i := 1024; i+1 < len(b); i += 4099 {
		b[i], b[i+1] = '\r', '\n'
	}
	return b
})

// LogArchive returns a copy of the exact bytes served by the log download
// endpoints: 256 KiB, deterministic, containing every byte value.
func LogArchive() []byte {
	return append([]byte(nil), logArchive()...)
}

// downloadLogs: GET .../api/Logs/Download on either service.
func (s *Server) downloadLogs(w http.ResponseWriter, _ *http.Request, _ []string) {
	b := logArchive()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="logs.zip"`)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
