//go:build linux

package storetest

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

// SmallDisk mounts a tmpfs of size bytes on a new directory and returns
// the directory, for tests of a full disk; it is unmounted when the test
// ends (register the cleanups that close files in it after SmallDisk).
// Mounting needs root, as the CI runs; without it the test is skipped,
// except under CI=true, where it fails: there the disk tests must run.
func SmallDisk(t testing.TB, size int64) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "orderflow-disk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0777", size)); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount a %d-byte tmpfs on %s (disk tests need root under CI=true): %v", size, dir, err)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// Filler is a file that takes up the free space of a file system.
type Filler struct {
	path string
	size int64
}

// FillDisk writes a new file in dir until the file system is full.
func FillDisk(t testing.TB, dir string) *Filler {
	t.Helper()
	file, err := os.CreateTemp(dir, "filler-")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	f := &Filler{path: file.Name()}
	buf := make([]byte, 4096)
	for {
		n, err := file.Write(buf)
		f.size += int64(n)
		if errors.Is(err, syscall.ENOSPC) {
			return f
		}
		if err != nil {
			t.Fatalf("fill %s: %v", dir, err)
		}
	}
}

// Free gives n bytes of the filler back to the file system.
func (f *Filler) Free(t testing.TB, n int64) {
	t.Helper()
	f.size = max(0, f.size-n)
	if err := os.Truncate(f.path, f.size); err != nil {
		t.Fatalf("free %d bytes: %v", n, err)
	}
}
