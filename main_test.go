package groupidauth

import (
	"testing"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

func TestMain(m *testing.M) { testenv.RunHermetic(m) }
