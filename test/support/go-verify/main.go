// go-verify checks an OpenClause tenant log with another codebase: Go's checksum-database
// packages (golang.org/x/mod/sumdb/note and sumdb/tlog, as Debian ships them in
// golang-golang-x-mod-dev). Nothing here comes from OpenClause's TypeScript: it reads the
// C2SP files on disk and lets Go's code judge them.
//
//	go-verify -dir D -origin O -vkey V [-witness VKEY]... [-checkpoint F]
//	          [-old F [-old-proof P]]... [-proof F=RECORD]...
//
// D holds the log as the archiver lays it out under its prefix: D/checkpoint and D/tile/<L>/<N>.
// Go names tiles with their height (tile/8/<L>/<N>); C2SP fixes the height at 8 and leaves it
// out, so the reader below drops that segment. Each check prints one line starting "ok "; the
// first failure prints "FAIL <what>: <why>" and exits 1.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const tileHeight = 8

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func fail(what string, err error) {
	fmt.Printf("FAIL %s: %v\n", what, err)
	os.Exit(1)
}

// cosigner verifies C2SP tlog-cosignature v1 (Ed25519, type 0x04): x/mod 0.7 knows only type 0x01.
type cosigner struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (c *cosigner) Name() string    { return c.name }
func (c *cosigner) KeyHash() uint32 { return c.hash }
func (c *cosigner) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig[:8])
	signed := append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", ts)), msg...)
	return ed25519.Verify(c.key, signed, sig[8:])
}

func newCosigner(vkey string) (*cosigner, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, errors.New("malformed witness vkey")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 || raw[0] != 0x04 {
		return nil, errors.New("witness vkey is not an Ed25519 cosignature key (type 0x04)")
	}
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	hash := binary.BigEndian.Uint32(h[:4])
	if fmt.Sprintf("%08x", hash) != parts[1] {
		return nil, errors.New("witness vkey id does not match its key")
	}
	return &cosigner{name: parts[0], hash: hash, key: ed25519.PublicKey(raw[1:])}, nil
}

type checkpoint struct {
	size int64
	root tlog.Hash
	text string
}

// openCheckpoint verifies the log's signature (and every named witness's) with Go's note.Open and
// reads the first three lines of the body per C2SP tlog-checkpoint.
func openCheckpoint(msg []byte, origin string, verifiers note.Verifiers, witnesses []*cosigner) (checkpoint, error) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		return checkpoint{}, err
	}
	logSigned := false
	for _, s := range n.Sigs {
		if s.Name == origin {
			logSigned = true
		}
	}
	if !logSigned {
		return checkpoint{}, errors.New("not signed by the log's key")
	}
	for _, w := range witnesses {
		found := false
		for _, s := range n.Sigs {
			if s.Name == w.name && s.Hash == w.hash {
				found = true
			}
		}
		if !found {
			return checkpoint{}, fmt.Errorf("no cosignature by %s", w.name)
		}
	}
	lines := strings.SplitAfter(n.Text, "\n")
	if len(lines) < 4 || lines[0] != origin+"\n" {
		return checkpoint{}, fmt.Errorf("checkpoint origin is not %q", origin)
	}
	size, err := strconv.ParseInt(strings.TrimSuffix(lines[1], "\n"), 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10)+"\n" != lines[1] {
		return checkpoint{}, errors.New("malformed tree size")
	}
	root, err := tlog.ParseHash(strings.TrimSuffix(lines[2], "\n"))
	if err != nil {
		return checkpoint{}, errors.New("malformed root hash")
	}
	return checkpoint{size: size, root: root, text: n.Text}, nil
}

// dirTiles serves tiles from the log directory to tlog.TileHashReader, which checks every tile it
// reads against the checkpoint's root before using it.
type dirTiles struct{ dir string }

func (d dirTiles) Height() int { return tileHeight }
func (d dirTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		goPath := t.Path()
		c2sp := "tile/" + strings.TrimPrefix(goPath, fmt.Sprintf("tile/%d/", tileHeight))
		data, err := os.ReadFile(filepath.Join(d.dir, filepath.FromSlash(c2sp)))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}
func (d dirTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func readHashes(lines []string) ([]tlog.Hash, error) {
	var out []tlog.Hash
	for _, l := range lines {
		h, err := tlog.ParseHash(l)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// parseProof reads a C2SP tlog-proof@v1 file: header, optional extra, index, hashes, blank line, note.
func parseProof(data []byte) (int64, []tlog.Hash, []byte, error) {
	i := bytes.Index(data, []byte("\n\n"))
	if i < 0 {
		return 0, nil, nil, errors.New("no checkpoint in proof")
	}
	head := strings.Split(string(data[:i]), "\n")
	if head[0] != "c2sp.org/tlog-proof@v1" {
		return 0, nil, nil, errors.New("missing c2sp.org/tlog-proof@v1 header")
	}
	head = head[1:]
	if len(head) > 0 && strings.HasPrefix(head[0], "extra ") {
		head = head[1:]
	}
	if len(head) == 0 || !strings.HasPrefix(head[0], "index ") {
		return 0, nil, nil, errors.New("missing index")
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(head[0], "index "), 10, 64)
	if err != nil || index < 0 {
		return 0, nil, nil, errors.New("malformed index")
	}
	hashes, err := readHashes(head[1:])
	if err != nil {
		return 0, nil, nil, err
	}
	return index, hashes, data[i+2:], nil
}

func main() {
	dir := flag.String("dir", "", "the log's directory (holding checkpoint and tile/)")
	origin := flag.String("origin", "", "the log's origin line and key name")
	vkey := flag.String("vkey", "", "the log's verifier key")
	cpFile := flag.String("checkpoint", "", "checkpoint note to verify (default <dir>/checkpoint)")
	var witnessKeys, olds, oldProofs, proofs list
	flag.Var(&witnessKeys, "witness", "a witness vkey (type 0x04) whose cosignature is required (repeatable)")
	flag.Var(&olds, "old", "an older checkpoint note the log must be consistent with (repeatable)")
	flag.Var(&oldProofs, "old-proof", "for the -old at the same position, a consistency proof (base64 lines) to check")
	flag.Var(&proofs, "proof", "PROOF=RECORD: a tlog-proof file and the record bytes it proves (repeatable)")
	flag.Parse()

	v, err := note.NewVerifier(*vkey)
	if err != nil {
		fail("vkey", err)
	}
	if v.Name() != *origin {
		fail("vkey", fmt.Errorf("key name %q is not the origin %q", v.Name(), *origin))
	}
	verifiers := []note.Verifier{v}
	var witnesses []*cosigner
	for _, k := range witnessKeys {
		w, err := newCosigner(k)
		if err != nil {
			fail("witness", err)
		}
		witnesses = append(witnesses, w)
		verifiers = append(verifiers, w)
	}
	known := note.VerifierList(verifiers...)

	for _, p := range proofs {
		proofFile, recordFile, ok := strings.Cut(p, "=")
		if !ok {
			fail("proof", errors.New("want PROOF=RECORD"))
		}
		data, err := os.ReadFile(proofFile)
		if err != nil {
			fail("proof", err)
		}
		record, err := os.ReadFile(recordFile)
		if err != nil {
			fail("proof", err)
		}
		index, hashes, msg, err := parseProof(data)
		if err != nil {
			fail("proof "+filepath.Base(proofFile), err)
		}
		cp, err := openCheckpoint(msg, *origin, known, witnesses)
		if err != nil {
			fail("proof "+filepath.Base(proofFile)+" checkpoint", err)
		}
		if err := tlog.CheckRecord(hashes, cp.size, cp.root, index, tlog.RecordHash(record)); err != nil {
			fail("proof "+filepath.Base(proofFile), err)
		}
		fmt.Printf("ok proof index=%d size=%d\n", index, cp.size)
	}

	if *dir == "" {
		return
	}
	if *cpFile == "" {
		*cpFile = filepath.Join(*dir, "checkpoint")
	}
	msg, err := os.ReadFile(*cpFile)
	if err != nil {
		fail("checkpoint", err)
	}
	cp, err := openCheckpoint(msg, *origin, known, witnesses)
	if err != nil {
		fail("checkpoint", err)
	}
	tree := tlog.Tree{N: cp.size, Hash: cp.root}
	hashes := tlog.TileHashReader(tree, dirTiles{*dir})
	if cp.size > 0 {
		th, err := tlog.TreeHash(cp.size, hashes)
		if err != nil {
			fail("tiles", err)
		}
		if th != cp.root {
			fail("tiles", errors.New("tiles do not hash to the checkpoint's root"))
		}
	}
	fmt.Printf("ok checkpoint size=%d root=%s\n", cp.size, cp.root)

	for i, f := range olds {
		data, err := os.ReadFile(f)
		if err != nil {
			fail("old", err)
		}
		old, err := openCheckpoint(data, *origin, known, nil)
		if err != nil {
			fail("old "+filepath.Base(f), err)
		}
		if old.size == 0 {
			// Every log extends the empty tree, whose root is SHA-256 of nothing.
			if old.root != tlog.Hash(sha256.Sum256(nil)) {
				fail("old "+filepath.Base(f), errors.New("an empty tree's root is SHA-256(\"\")"))
			}
			fmt.Printf("ok consistent old=0 new=%d\n", cp.size)
			continue
		}
		if old.size > cp.size {
			fail("old "+filepath.Base(f), fmt.Errorf("log is shorter (%d) than a kept checkpoint (%d)", cp.size, old.size))
		}
		// Go proves consistency from the tiles itself...
		p, err := tlog.ProveTree(cp.size, old.size, hashes)
		if err == nil {
			err = tlog.CheckTree(p, cp.size, cp.root, old.size, old.root)
		}
		if err != nil {
			fail("old "+filepath.Base(f), err)
		}
		// ...and checks the proof OpenClause produced, when one is given.
		if i < len(oldProofs) && oldProofs[i] != "" {
			text, err := os.ReadFile(oldProofs[i])
			if err != nil {
				fail("old-proof", err)
			}
			lines := strings.Fields(string(text))
			given, err := readHashes(lines)
			if err == nil {
				err = tlog.CheckTree(given, cp.size, cp.root, old.size, old.root)
			}
			if err != nil {
				fail("old-proof "+filepath.Base(oldProofs[i]), err)
			}
		}
		fmt.Printf("ok consistent old=%d new=%d\n", old.size, cp.size)
	}
}
