package sqsqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/orderflow/orderflow"
)

// mapErr turns an SDK error into an *orderflow.Error with a code:
// ENotFound for a stale or unknown receipt, EInternal for a request SQS
// refuses as malformed (a bug), and EUnavailable for everything else: the
// network, timeouts, throttling, SQS's own faults and a missing queue
// (which an operator fixes; retrying later is the right answer).
func mapErr(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	detail := fmt.Sprintf(format, args...)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return orderflow.Unavailable(err, "sqs: %s: timed out or canceled", detail)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		switch {
		case strings.Contains(code, "ReceiptHandleIsInvalid"), strings.Contains(code, "MessageNotInflight"),
			strings.Contains(code, "InvalidParameterValue") && strings.Contains(strings.ToLower(ae.ErrorMessage()), "receipt"):
			return &orderflow.Error{Code: orderflow.ENotFound, Detail: "sqs: " + detail + ": receipt is stale or unknown", Err: err}
		case strings.Contains(code, "NonExistentQueue"), strings.Contains(code, "QueueDoesNotExist"):
			return orderflow.Unavailable(err, "sqs: %s: the queue does not exist (run orderflow init?)", detail)
		case ae.ErrorFault() == smithy.FaultClient && !strings.Contains(code, "Throttl") && !strings.Contains(code, "RequestThrottled") &&
			!strings.Contains(code, "OverLimit") && !strings.Contains(code, "KmsThrottl") && !strings.Contains(code, "InvalidClientTokenId") &&
			!strings.Contains(code, "AccessDenied") && !strings.Contains(code, "ExpiredToken"):
			return &orderflow.Error{Code: orderflow.EInternal, Detail: "sqs: " + detail + ": request refused", Err: err}
		}
	}
	return orderflow.Unavailable(err, "sqs: %s", detail)
}

// redriveTarget returns the deadLetterTargetArn of a RedrivePolicy.
func redriveTarget(policy string) (arn string, maxReceives int, err error) {
	if policy == "" {
		return "", 0, errNoRedrive
	}
	var p struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		// SQS writes the count as a number (so do moto and ElasticMQ,
		// whatever form was set); a policy set through the console or
		// CreateQueues may hold a string.
		MaxReceiveCount json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(policy), &p); err != nil || p.DeadLetterTargetArn == "" {
		return "", 0, errNoRedrive
	}
	n, err := strconv.Atoi(strings.Trim(string(p.MaxReceiveCount), `"`))
	if err != nil || n < 1 {
		return "", 0, errNoRedrive
	}
	return p.DeadLetterTargetArn, n, nil
}

// arnQueue splits arn:aws:sqs:region:account:name into name and account.
func arnQueue(arn string) (name, account string) {
	parts := strings.Split(arn, ":")
	if len(parts) < 6 {
		return arn, ""
	}
	return parts[len(parts)-1], parts[4]
}
