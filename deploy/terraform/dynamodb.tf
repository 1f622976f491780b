# One table for everything the store keeps (single-table design): orders,
# idempotency records (expiring through TTL on expires_at), stock,
# reservations and the payment ledger. Items are addressed by pk/sk; the
# by_user index lists a user's orders newest first (gsi1pk = user,
# gsi1sk = order id, which sorts by time); the sparse by_pending index holds
# orders only while they are PENDING (pending_pk is a shard, pending_sk the
# order id): the processor's sweeper re-sends their messages if the api died
# between storing an order and sending it.

# Multi-region (docs/multi-region.md): one region's stack makes the table
# and its replicas (global_tables); the other regions' stacks set
# table_home_region to that region and use the replica in their own region.
# Multi-Region eventual consistency (MREC), not strong (MRSC): MRSC does not
# support transactions, and the store's writes that must be atomic (an
# order with its idempotency record, its stock reservations) are
# TransactWriteItems. Under MREC a conditional write is checked in the
# region that makes it only, and concurrent writes of one item from two
# regions resolve last writer wins: so every write of an order is made in
# one region at a time (its home region's api and processor).
resource "aws_dynamodb_table" "orders" {
  count = var.table_home_region == null ? 1 : 0

  name                        = var.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection

  # Global tables need a stream of new and old images.
  stream_enabled   = length(var.global_tables) > 0
  stream_view_type = length(var.global_tables) > 0 ? "NEW_AND_OLD_IMAGES" : null

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  attribute {
    name = "gsi1pk"
    type = "S"
  }

  attribute {
    name = "gsi1sk"
    type = "S"
  }

  attribute {
    name = "pending_pk"
    type = "S"
  }

  attribute {
    name = "pending_sk"
    type = "S"
  }

  global_secondary_index {
    name            = "by_user"
    hash_key        = "gsi1pk"
    range_key       = "gsi1sk"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "by_pending"
    hash_key        = "pending_pk"
    range_key       = "pending_sk"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  lifecycle {
    precondition {
      condition     = !contains(var.global_tables, var.region)
      error_message = "global_tables lists replica regions; leave out the table's own region."
    }
    precondition {
      condition     = length(var.global_tables) == 0 || var.kms_key_arn == null
      error_message = "Replicas of a table encrypted with a customer-managed key need a key in each region; use the AWS-managed key (kms_key_arn = null) with global_tables."
    }
  }

  dynamic "replica" {
    for_each = toset(var.global_tables)
    content {
      region_name            = replica.value
      consistency_mode       = "EVENTUAL"
      point_in_time_recovery = var.point_in_time_recovery
      propagate_tags         = true
    }
  }
}

# The replica of a global table made by the stack of table_home_region.
data "aws_dynamodb_table" "replica" {
  count = var.table_home_region == null ? 0 : 1
  name  = var.table_name
}

locals {
  table_arn  = var.table_home_region == null ? aws_dynamodb_table.orders[0].arn : data.aws_dynamodb_table.replica[0].arn
  table_name = var.table_home_region == null ? aws_dynamodb_table.orders[0].name : data.aws_dynamodb_table.replica[0].name
}
