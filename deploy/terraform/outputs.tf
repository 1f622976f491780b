# Names as the app's settings expect them:
#   export SQS_QUEUE_URL=$(terraform output -raw sqs_queue_url)
#   export SQS_DLQ_URL=$(terraform output -raw sqs_dlq_url)
#   export DDB_TABLE=$(terraform output -raw dynamodb_table)

output "sqs_queue_url" {
  description = "SQS_QUEUE_URL: the order queue."
  value       = aws_sqs_queue.orders.id
}

output "sqs_dlq_url" {
  description = "SQS_DLQ_URL: its dead-letter queue."
  value       = aws_sqs_queue.dlq.id
}

output "dynamodb_table" {
  description = "DDB_TABLE: the table name."
  value       = local.table_name
}

output "dynamodb_table_name" {
  description = "DDB_TABLE: the table name (the name the spec's README uses for the api)."
  value       = local.table_name
}

output "dynamodb_table_arn" {
  description = "ARN of the table."
  value       = local.table_arn
}

output "api_policy_arn" {
  description = "IAM policy to attach to the api's role."
  value       = aws_iam_policy.api.arn
}

output "processor_policy_arn" {
  description = "IAM policy to attach to the processor's role."
  value       = aws_iam_policy.processor.arn
}

output "operator_policy_arn" {
  description = "IAM policy for operators running orderflow dlq."
  value       = aws_iam_policy.operator.arn
}

output "app_env" {
  description = "The app's AWS settings as shell exports: eval \"$(terraform output -raw app_env)\"."
  value       = <<-EOT
    export AWS_REGION=${var.region}
    export SQS_QUEUE_URL=${aws_sqs_queue.orders.id}
    export SQS_DLQ_URL=${aws_sqs_queue.dlq.id}
    export DDB_TABLE=${local.table_name}
  EOT
}
