/**
 * The OP's icon (/favicon.ico): a 32×32 PNG in an ICO container, a white keyhole on the pages' button colour.
 * Browsers ask every origin for it; without it each page load logged a 404.
 */
export const FAVICON_ICO_BASE64 =
  "AAABAAEAICAAAAEAIABHAQAAFgAAAIlQTkcNChoKAAAADUlIRFIAAAAgAAAAIAgGAAAAc3p69AAAAQ5JREFUeNpjUHIJZUDCCkouof1KLqHnlVxC/1MZn4earYBsJ7LlCUouoe9pYDE6fg+1C8UBCXSwGB0nwBygQCefYwsJBQZovPwfINzPQKMER3TCZBhAy8GYLAfYRWf9b542//+JC1fBGMQGidHFAaVdU/9//PzlPzoAiYHkaOqAyOKG/4QASA3NHHDtzn2CDgCpoYkDQHFMLCAlPTBQM/jJiYahEwIDngYGRS4Y8HIAhkGlHzoAidGtKMYF6OIAg4AEnA4AydHcAfgSIqkJkCwHgGo+XAAkR3MHzFu7FacDQHI0dwC2HEBJTiDZAdjKAOSygC7ZkNpNsgFvlA54s3zAOyYD3jUbFJ3TAeueAwDP4fOQOLCfvwAAAABJRU5ErkJggg==";
