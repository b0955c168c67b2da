// A small generated English-like corpus for examples/train-tp.ts: sentences from a tiny
// grammar, drawn with a fixed PRNG so every rank (and every run) sees the same text.
const SUBJECTS = ['the cat', 'a dog', 'the old man', 'my sister', 'the bird', 'a child', 'the farmer', 'our teacher'];
const VERBS = ['sees', 'likes', 'finds', 'carries', 'paints', 'follows', 'feeds', 'watches'];
const OBJECTS = ['the red ball', 'a small boat', 'the green hill', 'an apple', 'the river', 'a quiet house', 'the long road', 'some bread'];
const ENDINGS = ['.', ' today.', ' at night.', ' in the rain.', ' again.', ' with joy.'];

export function tinyCorpus(chars = 40_000, seed = 12345): string {
  let s = seed >>> 0;
  const rand = (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s >>> 8) % n;
  };
  const parts: string[] = [];
  let length = 0;
  while (length < chars) {
    const sentence = `${SUBJECTS[rand(SUBJECTS.length)]} ${VERBS[rand(VERBS.length)]} ${OBJECTS[rand(OBJECTS.length)]}${ENDINGS[rand(ENDINGS.length)]} `;
    parts.push(sentence);
    length += sentence.length;
  }
  return parts.join('').slice(0, chars);
}
