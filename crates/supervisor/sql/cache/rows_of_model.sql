SELECT body FROM rows WHERE model = ?1
