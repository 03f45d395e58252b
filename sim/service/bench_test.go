package service_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"

	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

// BenchmarkServiceRollout measures the whole service over loopback on its on-disk store: 1,000 robots, driven
// through the IoT Jobs data plane by 64 concurrent device workers, complete one deployment job at 100 %
// concurrency. Each robot starts its execution, reports five steps and succeeds (7 requests). Reported:
// devices/s from CreateDeploymentJob to the job's Succeeded.
func BenchmarkServiceRollout(b *testing.B) {
	const robots, workers = 1000, 64
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w := start(b, b.TempDir(), 1)
		fleet := w.setup(robots)
		http.DefaultTransport.(*http.Transport).MaxIdleConnsPerHost = workers
		b.StartTimer()
		began := time.Now()
		job := w.deploy(fleet, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(100)})
		names := make(chan string, robots)
		for r := 0; r < robots; r++ {
			names <- fmt.Sprintf("robot-%02d", r)
		}
		close(names)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failure error
		for k := 0; k < workers; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for name := range names {
					if err := deviceRun(w.svc.Endpoint(), name); err != nil {
						mu.Lock()
						failure = err
						mu.Unlock()
						return
					}
				}
			}()
		}
		wg.Wait()
		if failure != nil {
			b.Fatal(failure)
		}
		if out := w.waitJob(job); out.Status != types.DeploymentStatusSucceeded {
			b.Fatalf("job %v", out.Status)
		}
		total += time.Since(began)
		b.StopTimer()
		w.svc.Close()
	}
	b.ReportMetric(float64(robots*b.N)/total.Seconds(), "devices/s")
	b.ReportMetric(float64(robots*b.N*7)/total.Seconds(), "device-requests/s")
}

// deviceRun carries one robot's execution through the data plane, with plain HTTP and no checks beyond status.
func deviceRun(endpoint, name string) error {
	var start wire.StartNextPendingJobExecutionResponse
	if err := doJSON("PUT", endpoint+"/things/"+name+"/jobs/$next", wire.StartNextPendingJobExecutionRequest{},
		&start); err != nil {
		return err
	}
	if start.Execution == nil {
		return fmt.Errorf("%s has nothing pending", name)
	}
	job := start.Execution.JobID
	for _, step := range []string{rmwire.StepDownloadingExtracting, rmwire.StepExecutingDownloadCondition,
		rmwire.StepExecutingPreLaunch, rmwire.StepLaunching, rmwire.StepExecutingPostLaunch} {
		if err := doJSON("POST", endpoint+"/things/"+name+"/jobs/"+job, wire.UpdateJobExecutionRequest{
			Status: wire.StatusInProgress, StatusDetails: map[string]string{wire.DetailStep: step}}, nil); err != nil {
			return err
		}
	}
	return doJSON("POST", endpoint+"/things/"+name+"/jobs/"+job, wire.UpdateJobExecutionRequest{
		Status: wire.StatusSucceeded, StatusDetails: map[string]string{wire.DetailStep: rmwire.StepFinished}}, nil)
}
