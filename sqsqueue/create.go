package sqsqueue

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// QueueSpec describes the queues CreateQueues makes.
type QueueSpec struct {
	Name    string // the order queue
	DLQName string // its dead-letter queue
	// VisibilityTimeout of the order queue (whole seconds, at least 1s).
	VisibilityTimeout time.Duration
	// MaxReceives is the RedrivePolicy's maxReceiveCount.
	MaxReceives int
}

// CreateQueues creates the dead-letter queue and the order queue with a
// RedrivePolicy pointing at it, and returns both URLs. It is idempotent:
// existing queues are kept and their attributes set to spec (CreateQueue
// refuses existing queues with other attributes, so attributes are set
// separately). The dead-letter queue keeps messages for 14 days, the
// maximum, so that operators have time to look.
func CreateQueues(ctx context.Context, client *sqs.Client, spec QueueSpec) (queueURL, dlqURL string, err error) {
	if spec.Name == "" || spec.DLQName == "" || spec.MaxReceives < 1 {
		return "", "", fmt.Errorf("sqs: queue and dead-letter queue names and a positive max receive count are required")
	}
	dlqURL, err = createQueue(ctx, client, spec.DLQName, map[string]string{
		string(types.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(14 * 24 * 3600),
	})
	if err != nil {
		return "", "", err
	}
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &dlqURL, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", mapErr(err, "read arn of %s", spec.DLQName)
	}
	policy, _ := json.Marshal(map[string]string{
		"deadLetterTargetArn": attrs.Attributes[string(types.QueueAttributeNameQueueArn)],
		"maxReceiveCount":     strconv.Itoa(spec.MaxReceives),
	})
	vt := max(1, int(spec.VisibilityTimeout/time.Second))
	queueURL, err = createQueue(ctx, client, spec.Name, map[string]string{
		string(types.QueueAttributeNameRedrivePolicy):     string(policy),
		string(types.QueueAttributeNameVisibilityTimeout): strconv.Itoa(vt),
	})
	if err != nil {
		return "", "", err
	}
	return queueURL, dlqURL, nil
}

// createQueue creates name (or finds it) and sets attrs on it.
func createQueue(ctx context.Context, client *sqs.Client, name string, attrs map[string]string) (string, error) {
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: &name})
	if err != nil {
		return "", mapErr(err, "create queue %s", name)
	}
	url := aws.ToString(out.QueueUrl)
	if _, err := client.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: attrs}); err != nil {
		return "", mapErr(err, "set attributes of queue %s", name)
	}
	return url, nil
}

// DeleteQueues deletes the queues at urls (tests clean up with it).
func DeleteQueues(ctx context.Context, client *sqs.Client, urls ...string) error {
	for _, u := range urls {
		if _, err := client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(u)}); err != nil {
			return mapErr(err, "delete queue %s", u)
		}
	}
	return nil
}
