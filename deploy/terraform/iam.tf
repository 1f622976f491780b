# Least-privilege policies for the two roles of the program. Attach them to
# the api's and the processor's task role, instance profile or IRSA role.
# `orderflow init` and `orderflow dlq` are operator tasks: see the operator
# policy.

locals {
  table_arns = [
    local.table_arn,
    "${local.table_arn}/index/by_user",
    "${local.table_arn}/index/by_pending",
  ]
  # The store's reads and conditional writes (TransactWriteItems needs the
  # per-item actions, ConditionCheckItem included). No Scan, no DeleteItem
  # of orders, no table administration.
  table_item_actions = [
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
  ]
}

data "aws_iam_policy_document" "api" {
  statement {
    sid       = "SendOrders"
    actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"]
    resources = [aws_sqs_queue.orders.arn]
  }

  statement {
    sid       = "ReadDeadLetterDepth"
    actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "OrdersTable"
    actions   = local.table_item_actions
    resources = local.table_arns
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "EncryptedQueueAndTable"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

data "aws_iam_policy_document" "processor" {
  statement {
    sid = "WorkOrders"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
    ]
    resources = [aws_sqs_queue.orders.arn]
  }

  # The processor marks the orders of dead-lettered messages FAILED and
  # leaves the messages where they are (no DeleteMessage on the DLQ).
  statement {
    sid = "WatchDeadLetters"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
    ]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "OrdersTable"
    actions   = local.table_item_actions
    resources = local.table_arns
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "EncryptedQueueAndTable"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

# `orderflow dlq list|redrive|purge` for on-call operators.
data "aws_iam_policy_document" "operator" {
  statement {
    sid = "DeadLetters"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:PurgeQueue",
      "sqs:ReceiveMessage",
    ]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "Redrive"
    actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"]
    resources = [aws_sqs_queue.orders.arn]
  }

  statement {
    sid       = "OrdersTable"
    actions   = local.table_item_actions
    resources = local.table_arns
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "EncryptedQueueAndTable"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_policy" "api" {
  name        = "${var.queue_name}-api"
  description = "orderflow api: send orders, read and write its table items."
  policy      = data.aws_iam_policy_document.api.json
}

resource "aws_iam_policy" "processor" {
  name        = "${var.queue_name}-processor"
  description = "orderflow processor: receive, delete and retry orders, write the table."
  policy      = data.aws_iam_policy_document.processor.json
}

resource "aws_iam_policy" "operator" {
  name        = "${var.queue_name}-operator"
  description = "orderflow dlq list, redrive and purge."
  policy      = data.aws_iam_policy_document.operator.json
}
