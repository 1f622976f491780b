package replica_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/replica"
	"github.com/orderflow/orderflow/sqlite"
)

// fill accepts orders into the database at path until its file holds
// size bytes (each order carries about 1 KB that does not compress, as
// real addresses and names would not).
func fill(b *testing.B, db *sqlite.DB, path string, size int64) int {
	b.Helper()
	var mu sync.Mutex
	n := 0
	for {
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		if fi.Size() >= size {
			return n
		}
		var wg sync.WaitGroup
		for w := range 32 {
			wg.Go(func() {
				raw := make([]byte, 450)
				for i := range 200 {
					mu.Lock()
					k := n
					n++
					mu.Unlock()
					o := order(fmt.Sprint("u", k%500), t0.Add(time.Duration(k*64+w+i)*time.Microsecond))
					_, _ = rand.Read(raw)
					o.RequestID = hex.EncodeToString(raw)
					if _, _, err := db.Accept(context.Background(), o, orderflow.IdempotencyKey{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

// benchmarkRestore builds a database of 100 MB, replicates it to cfg and
// measures orderflow's restore of it (the RTO's main part).
func benchmarkRestore(b *testing.B, cfg replica.Config) {
	dir := b.TempDir()
	path := filepath.Join(dir, "orderflow.db")
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		b.Fatal(err)
	}
	orders := fill(b, db, path, 100<<20)
	r, err := replica.New(path, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for deadline := time.Now().Add(5 * time.Minute); r.Lag(time.Now()) > 0 || !r.Active(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the replica did not catch up within 5 minutes")
		}
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	db.Close()
	fi, _ := os.Stat(path)
	b.ResetTimer()
	for i := range b.N {
		if err := replica.Restore(context.Background(), filepath.Join(dir, fmt.Sprint("restored-", i, ".db")), cfg, time.Time{}, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "MB")
	b.ReportMetric(float64(orders), "orders")
}

// BenchmarkRestore100MB measures the restore of a 100 MB database from a
// file replica:
//
//	go test ./replica -run '^$' -bench Restore100MB -benchtime 3x
func BenchmarkRestore100MB(b *testing.B) {
	b.Run("file", func(b *testing.B) {
		benchmarkRestore(b, replica.Config{URL: "file://" + filepath.Join(b.TempDir(), "replica")})
	})
	b.Run("s3-moto", func(b *testing.B) {
		endpoint := awstest.Endpoint(b)
		b.Setenv("AWS_CA_BUNDLE", "")
		b.Setenv("AWS_ACCESS_KEY_ID", "test")
		b.Setenv("AWS_SECRET_ACCESS_KEY", "test")
		bucket := awstest.Name("orderflow-bench")
		s3c := s3.NewFromConfig(awstest.Config(endpoint), func(o *s3.Options) { o.UsePathStyle = true })
		if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
			b.Fatal(err)
		}
		benchmarkRestore(b, replica.Config{URL: "s3://" + bucket + "/bench", S3Endpoint: endpoint, Region: awstest.Region})
	})
}
