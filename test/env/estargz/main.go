// estargz-layout converts one image of an OCI layout to eStargz layers, with the stargz-snapshotter
// project's own estargz package (Debian: golang-github-containerd-stargz-snapshotter-dev), so that
// Portcullis's eStargz reader is tested against blobs and tables of contents it did not write.
//
//	estargz-layout SRC_LAYOUT TAG DEST_LAYOUT [CHUNK_SIZE]
//
// Each layer of SRC_LAYOUT:TAG is rebuilt by estargz.Build (per-file gzip members, the TOC entry and the
// 51-byte footer); the new descriptor carries containerd.io/snapshot/stargz/toc.digest and
// io.containers.estargz.uncompressed-size, and the config's diff_ids are the rebuilt tars' digests. The
// result is DEST_LAYOUT with one manifest tagged TAG. Built by test/env/setup.sh; not shipped.
package main

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/stargz-snapshotter/estargz"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	Manifests     []descriptor `json:"manifests"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "estargz-layout: "+format+"\n", a...)
	os.Exit(1)
}

func blobPath(layout, digest string) string {
	if len(digest) != 71 || digest[:7] != "sha256:" {
		fail("unexpected digest %q", digest)
	}
	return filepath.Join(layout, "blobs", "sha256", digest[7:])
}

func readJSON(path string, v interface{}) {
	b, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		fail("%s: %v", path, err)
	}
}

// writeBlob stores data in dest's blob folder and returns its descriptor.
func writeBlob(dest, mediaType string, data []byte) descriptor {
	sum := sha256.Sum256(data)
	d := descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))}
	if err := os.WriteFile(blobPath(dest, d.Digest), data, 0o644); err != nil {
		fail("%v", err)
	}
	return d
}

// convert rebuilds one layer blob as eStargz into dest; returns its descriptor and the tar's digest.
func convert(src, dest string, layer descriptor, opts []estargz.Option) (descriptor, string) {
	in, err := os.Open(blobPath(src, layer.Digest))
	if err != nil {
		fail("%v", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		fail("%v", err)
	}
	blob, err := estargz.Build(io.NewSectionReader(in, 0, st.Size()), opts...)
	if err != nil {
		fail("layer %s: %v", layer.Digest, err)
	}
	tmp, err := os.CreateTemp(filepath.Join(dest, "blobs", "sha256"), ".estargz-")
	if err != nil {
		fail("%v", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), blob)
	if err != nil {
		fail("layer %s: %v", layer.Digest, err)
	}
	if err := blob.Close(); err != nil {
		fail("%v", err)
	}
	if err := tmp.Close(); err != nil {
		fail("%v", err)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp.Name(), blobPath(dest, digest)); err != nil {
		fail("%v", err)
	}
	// The uncompressed size, for the annotation: the whole blob read back as one gzip stream.
	f, err := os.Open(blobPath(dest, digest))
	if err != nil {
		fail("%v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		fail("%v", err)
	}
	size, err := io.Copy(io.Discard, zr)
	if err != nil {
		fail("layer %s read back: %v", digest, err)
	}
	return descriptor{
		MediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
		Digest:    digest,
		Size:      n,
		Annotations: map[string]string{
			"containerd.io/snapshot/stargz/toc.digest": blob.TOCDigest().String(),
			"io.containers.estargz.uncompressed-size":  strconv.FormatInt(size, 10),
		},
	}, blob.DiffID().String()
}

func main() {
	if len(os.Args) != 4 && len(os.Args) != 5 {
		fail("usage: estargz-layout SRC_LAYOUT TAG DEST_LAYOUT [CHUNK_SIZE]")
	}
	src, tag, dest := os.Args[1], os.Args[2], os.Args[3]
	var opts []estargz.Option
	if len(os.Args) == 5 {
		n, err := strconv.Atoi(os.Args[4])
		if err != nil || n <= 0 {
			fail("chunk size %q is not a positive number", os.Args[4])
		}
		opts = append(opts, estargz.WithChunkSize(n))
	}
	var idx index
	readJSON(filepath.Join(src, "index.json"), &idx)
	var md *descriptor
	for i := range idx.Manifests {
		if idx.Manifests[i].Annotations["org.opencontainers.image.ref.name"] == tag {
			md = &idx.Manifests[i]
		}
	}
	if md == nil {
		fail("%s has no image tagged %q", src, tag)
	}
	var m manifest
	readJSON(blobPath(src, md.Digest), &m)
	var config map[string]interface{}
	readJSON(blobPath(src, m.Config.Digest), &config)
	rootfs, ok := config["rootfs"].(map[string]interface{})
	if !ok {
		fail("config %s has no rootfs", m.Config.Digest)
	}
	if err := os.MkdirAll(filepath.Join(dest, "blobs", "sha256"), 0o755); err != nil {
		fail("%v", err)
	}
	diffIDs := make([]interface{}, len(m.Layers))
	for i, l := range m.Layers {
		m.Layers[i], diffIDs[i] = convert(src, dest, l, opts)
	}
	rootfs["diff_ids"] = diffIDs
	cfg, err := json.Marshal(config)
	if err != nil {
		fail("%v", err)
	}
	m.Config = writeBlob(dest, m.Config.MediaType, cfg)
	m.MediaType = "application/vnd.oci.image.manifest.v1+json"
	mb, err := json.Marshal(m)
	if err != nil {
		fail("%v", err)
	}
	d := writeBlob(dest, m.MediaType, mb)
	d.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag}
	ib, err := json.Marshal(index{SchemaVersion: 2, Manifests: []descriptor{d}})
	if err != nil {
		fail("%v", err)
	}
	if err := os.WriteFile(filepath.Join(dest, "index.json"), ib, 0o644); err != nil {
		fail("%v", err)
	}
	if err := os.WriteFile(filepath.Join(dest, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		fail("%v", err)
	}
}
