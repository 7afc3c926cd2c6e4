package storage

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// tmpPrefix marks files that are not yet committed; recovery removes them.
const tmpPrefix = ".tmp-"

// atomicFile is a file written under a temporary name in its final
// directory and renamed into place once its contents are on disk.
type atomicFile struct {
	f     *os.File
	bw    *bufio.Writer
	h     hash.Hash
	n     int64
	tmp   string
	final string
}

func createAtomic(dir, name string) (*atomicFile, error) {
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(dir, tmpPrefix+hex.EncodeToString(rnd[:])+"-"+name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	a := &atomicFile{f: f, h: sha256.New(), tmp: tmp, final: filepath.Join(dir, name)}
	a.bw = bufio.NewWriterSize(io.MultiWriter(f, a.h), 64<<10)
	return a, nil
}

func (a *atomicFile) Write(p []byte) (int, error) {
	n, err := a.bw.Write(p)
	a.n += int64(n)
	return n, err
}

// commit makes the file durable and renames it into place. The caller must
// fsync the directory (once for several commits) before relying on it.
func (a *atomicFile) commit() (size int64, sum string, err error) {
	if err := a.bw.Flush(); err != nil {
		a.abort()
		return 0, "", err
	}
	if err := a.f.Sync(); err != nil {
		a.abort()
		return 0, "", err
	}
	if err := a.f.Close(); err != nil {
		os.Remove(a.tmp)
		return 0, "", err
	}
	if err := os.Rename(a.tmp, a.final); err != nil {
		os.Remove(a.tmp)
		return 0, "", err
	}
	return a.n, hex.EncodeToString(a.h.Sum(nil)), nil
}

func (a *atomicFile) abort() {
	a.f.Close()
	os.Remove(a.tmp)
}

func isTemp(name string) bool { return strings.HasPrefix(name, tmpPrefix) }

// WriteFileAtomic writes a whole small file the way the store writes its
// own: a temporary name in the same directory, fsync, rename, then fsync of
// the directory. The device's pairing, the laptop's keys, cases and vault
// index all go through it.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	a, err := createAtomic(dir, name)
	if err != nil {
		return err
	}
	if err := a.f.Chmod(mode); err != nil {
		a.abort()
		return err
	}
	if _, err := a.Write(data); err != nil {
		a.abort()
		return err
	}
	if _, _, err := a.commit(); err != nil {
		return err
	}
	return syncDir(dir)
}

// SyncDir makes renames and removals in dir durable. On Windows, where a
// directory cannot be fsynced (NTFS journals its metadata) and os.Rename
// replaces the target, it does nothing.
func SyncDir(dir string) error { return syncDir(dir) }
