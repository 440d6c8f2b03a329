SELECT predicted_at, days, lower_days, upper_days, model_version
  FROM cloud.predictions
 WHERE plant = $1 AND machine_id = $2
   AND ($3::timestamptz IS NULL OR predicted_at >= $3)
   AND ($4::timestamptz IS NULL OR predicted_at < $4)
   AND ($5::timestamptz IS NULL OR predicted_at < $5)
 ORDER BY predicted_at DESC
 LIMIT $6
